package databroker_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/services/databroker"
)

// The README's storage table lists exactly the registry's types, in order,
// with the registry's words of when to use each.
func TestREADMEStorageTableIsTheRegistry(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)<!-- storage-types[^>]*-->\n(.*?)<!-- /storage-types -->`).FindSubmatch(b)
	if m == nil {
		t.Fatal("README.md has no storage-types table")
	}
	var want strings.Builder
	want.WriteString("| type | use it for |\n|---|---|\n")
	for _, typ := range databroker.StorageTypes.Types() {
		want.WriteString("| `" + typ.Name + "` | " + typ.Use + " |\n")
	}
	if string(m[1]) != want.String() {
		t.Errorf("README.md storage table:\n%s\nwant (from services/databroker.StorageTypes):\n%s", m[1], want.String())
	}
}

package deployments

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/gatehouse/gatehouse/pkg/config"
	"github.com/gatehouse/gatehouse/pkg/testutil/kubetest"
	// The databroker's storage registry, which config validation reads.
	_ "github.com/gatehouse/gatehouse/services/databroker"
)

// The compose override puts the databroker on PostgreSQL: its storage
// options validate, it waits for a healthy PostgreSQL, and Redis is not
// started.
func TestComposePostgresOverride(t *testing.T) {
	root, _ := filepath.Abs("..")
	var files []types.ConfigFile
	for _, f := range []string{"docker-compose.yaml", "deployments/compose/postgres.yaml"} {
		files = append(files, types.ConfigFile{Filename: filepath.Join(root, f), Content: readFile(t, filepath.Join(root, f))})
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir: root, ConfigFiles: files, Environment: types.Mapping{},
	}, func(o *loader.Options) { o.ResolvePaths = true })
	if err != nil {
		t.Fatalf("docker-compose.yaml with deployments/compose/postgres.yaml is not valid: %v", err)
	}
	if _, ok := p.Services["redis"]; ok {
		t.Error("redis still starts with the postgres override")
	}
	pgSvc, ok := p.Services["postgres"]
	if !ok || pgSvc.HealthCheck == nil {
		t.Fatal("no postgres service with a health check")
	}
	db := p.Services["databroker"]
	if _, ok := db.DependsOn["redis"]; ok {
		t.Error("the databroker still depends on redis")
	}
	if dep, ok := db.DependsOn["postgres"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("the databroker does not wait for a healthy postgres: %+v", db.DependsOn)
	}
	e := env(db)
	if e["DATABROKER_STORAGE_TYPE"] != "postgres" || mustURL(t, e["DATABROKER_STORAGE_CONNECTION_STRING"]).Hostname() != "postgres" {
		t.Errorf("databroker storage %q %q", e["DATABROKER_STORAGE_TYPE"], e["DATABROKER_STORAGE_CONNECTION_STRING"])
	}
	secrets := genSecrets(t)
	e["SHARED_SECRET_FILE"] = filepath.Join(secrets, "shared_secret")
	e["COOKIE_SECRET_FILE"] = filepath.Join(secrets, "cookie_secret")
	if _, err := config.Parse(readFile(t, filepath.Join(root, "deployments/compose/config.yaml")), "/etc/gatehouse/config.yaml", mapEnv(e)); err != nil {
		t.Fatalf("the databroker's configuration does not validate:\n%v", err)
	}
}

// The Kubernetes postgres variant: an overlay of the base that removes
// Redis, adds PostgreSQL, and points the databroker's storage options at
// it (the JSON patch's tests hold against the base Deployment).
func TestKubernetesPostgresVariant(t *testing.T) {
	dir := "kubernetes-postgres" // beside the base: kustomize refuses an overlay inside its base
	var k struct {
		Resources []string `yaml:"resources"`
		Patches   []struct {
			Target struct{ Kind, Name string } `yaml:"target"`
			Patch  string                      `yaml:"patch"`
		} `yaml:"patches"`
	}
	if err := yaml.Unmarshal(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatal(err)
	}
	if strings.Join(k.Resources, ",") != "../kubernetes,postgres.yaml" {
		t.Errorf("resources %v", k.Resources)
	}
	o, _ := loadK8s(t)
	base := o.deployments["databroker"].Spec.Template.Spec.Containers[0].Env
	deleted := map[string]bool{}
	var ops []struct {
		Op, Path string
		Value    any
	}
	for _, p := range k.Patches {
		if strings.Contains(p.Patch, "$patch: delete") {
			deleted[p.Target.Kind+"/"+p.Target.Name] = true
			continue
		}
		if p.Target.Kind != "Deployment" || p.Target.Name != "databroker" {
			t.Errorf("unexpected patch of %s/%s", p.Target.Kind, p.Target.Name)
		}
		if err := yaml.Unmarshal([]byte(p.Patch), &ops); err != nil {
			t.Fatal(err)
		}
	}
	if !deleted["StatefulSet/redis"] || !deleted["Service/redis"] {
		t.Errorf("redis is not removed: %v", deleted)
	}
	for _, op := range ops {
		if op.Op != "test" {
			continue
		}
		rest, _ := strings.CutPrefix(op.Path, "/spec/template/spec/containers/0/env/")
		idx, _, _ := strings.Cut(rest, "/")
		i, err := strconv.Atoi(idx)
		if err != nil || i >= len(base) || base[i].Name != op.Value {
			t.Errorf("patch test %s = %v does not hold against the base databroker", op.Path, op.Value)
		}
	}

	scheme := runtime.NewScheme()
	_ = corev1.AddToScheme(scheme)
	_ = appsv1.AddToScheme(scheme)
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	var secret *corev1.Secret
	var sts *appsv1.StatefulSet
	for i, doc := range docSeparator.Split(string(readFile(t, filepath.Join(dir, "postgres.yaml"))), -1) {
		obj, _, err := decoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("postgres.yaml document %d: %v", i, err)
		}
		switch v := obj.(type) {
		case *corev1.Secret:
			secret = v
		case *appsv1.StatefulSet:
			sts = v
		}
	}
	if secret == nil || sts == nil || len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatal("postgres.yaml needs the gatehouse-postgres Secret and a StatefulSet with a volume")
	}
	conn := secret.StringData["DATABROKER_STORAGE_CONNECTION_STRING"]
	if u := mustURL(t, conn); u.Hostname() != "postgres.gatehouse.svc.cluster.local" {
		t.Errorf("connection string host %q", u.Hostname())
	}
	e := map[string]string{"SERVICES": "databroker", "SHARED_SECRET_FILE": filepath.Join(genSecrets(t), "shared_secret"), "DATABROKER_STORAGE_TYPE": "postgres", "DATABROKER_STORAGE_CONNECTION_STRING": conn}
	if _, err := config.Parse([]byte(""), "", mapEnv(e)); err != nil {
		t.Fatalf("the databroker's storage options do not validate: %v", err)
	}
}

// The postgres overlay renders with kubectl kustomize (it once sat inside
// its base's folder, which kustomize refuses as a cycle).
func TestKubePostgresOverlayRenders(t *testing.T) {
	assets, why := kubetest.Assets()
	if assets == "" {
		t.Skipf("skipping: kubectl comes with the kube binaries: %s", why)
	}
	kubectl := filepath.Join(assets, "kubectl")
	if _, err := os.Stat(kubectl); err != nil {
		t.Skipf("skipping: no kubectl in %s", assets)
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes-postgres").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize kubernetes-postgres: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "name: gatehouse-postgres") || strings.Contains(string(out), "name: redis\n") {
		t.Errorf("the rendered overlay should add PostgreSQL and drop Redis:\n%s", out)
	}
}

package storage

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	databrokerv1 "github.com/gatehouse/gatehouse/proto/gatehouse/databroker/v1"
)

// IndexedFields are the top-level string fields of record data that Query
// filters and free-text queries look at, besides the record id.
var IndexedFields = []string{"email", "user_id"}

// Index maps an indexed field name to its value in one record.
type Index map[string]string

// ExtractIndex returns the indexed fields of a record's data: top-level
// string fields named in IndexedFields of a registered message type or of
// a google.protobuf.Struct. Unknown types yield an empty index.
func ExtractIndex(data *anypb.Any) Index {
	if data == nil {
		return nil
	}
	msg, err := unmarshalAny(data)
	if err != nil {
		return nil
	}
	var idx Index
	if s, ok := msg.(*structpb.Struct); ok {
		for _, name := range IndexedFields {
			if v, ok := s.GetFields()[name]; ok {
				if sv, ok := v.GetKind().(*structpb.Value_StringValue); ok && sv.StringValue != "" {
					if idx == nil {
						idx = Index{}
					}
					idx[name] = sv.StringValue
				}
			}
		}
		return idx
	}
	m := msg.ProtoReflect()
	fields := m.Descriptor().Fields()
	for _, name := range IndexedFields {
		fd := fields.ByName(protoreflect.Name(name))
		if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() || fd.IsMap() {
			continue
		}
		if v := m.Get(fd).String(); v != "" {
			if idx == nil {
				idx = Index{}
			}
			idx[name] = v
		}
	}
	return idx
}

func unmarshalAny(data *anypb.Any) (proto.Message, error) {
	return anypb.UnmarshalNew(data, proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes, DiscardUnknown: true})
}

// ValidateFilter checks that a filter names only "id" and IndexedFields.
func ValidateFilter(filter map[string][]string) error {
	for k := range filter {
		if k == "id" {
			continue
		}
		known := false
		for _, f := range IndexedFields {
			if f == k {
				known = true
				break
			}
		}
		if !known {
			return fmt.Errorf("%w: filter field %q is not indexed (indexed: id, %s)", ErrInvalid, k, strings.Join(IndexedFields, ", "))
		}
	}
	return nil
}

// Match reports whether a record with id and index matches q's text and
// filter (q.Text is expected lower-cased by the caller).
func Match(q *Query, id string, idx Index) bool {
	for field, values := range q.Filter {
		got := id
		if field != "id" {
			got = idx[field]
		}
		ok := false
		for _, v := range values {
			if v == got {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if q.Text == "" {
		return true
	}
	if strings.Contains(strings.ToLower(id), q.Text) {
		return true
	}
	for _, v := range idx {
		if strings.Contains(strings.ToLower(v), q.Text) {
			return true
		}
	}
	return false
}

// Page sorts matching records by id and applies q's offset and limit,
// returning the page and the total count.
func Page(q *Query, records []*databrokerv1.Record) ([]*databrokerv1.Record, int) {
	sort.Slice(records, func(i, j int) bool { return records[i].GetId() < records[j].GetId() })
	total := len(records)
	off := q.Offset
	if off > total {
		off = total
	}
	records = records[off:]
	if q.Limit > 0 && len(records) > q.Limit {
		records = records[:q.Limit]
	}
	return records, total
}

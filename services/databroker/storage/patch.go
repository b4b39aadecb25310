package storage

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// ApplyFieldMask returns dst's data with the fields named by paths (dotted
// for nested messages) copied from src's data. Both must hold the same
// registered message type. A field unset in src is cleared in dst.
func ApplyFieldMask(dst, src *anypb.Any, paths []string) (*anypb.Any, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: empty field mask", ErrInvalid)
	}
	if dst.GetTypeUrl() != src.GetTypeUrl() {
		return nil, fmt.Errorf("%w: patch data type %q does not match stored type %q", ErrInvalid, src.GetTypeUrl(), dst.GetTypeUrl())
	}
	d, err := unmarshalAny(dst)
	if err != nil {
		return nil, fmt.Errorf("%w: stored data: %v", ErrInvalid, err)
	}
	s, err := unmarshalAny(src)
	if err != nil {
		return nil, fmt.Errorf("%w: patch data: %v", ErrInvalid, err)
	}
	for _, p := range paths {
		if err := copyPath(d.ProtoReflect(), s.ProtoReflect(), strings.Split(p, ".")); err != nil {
			return nil, fmt.Errorf("%w: field mask path %q: %v", ErrInvalid, p, err)
		}
	}
	out, err := anypb.New(d)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return out, nil
}

func copyPath(dst, src protoreflect.Message, path []string) error {
	fd := dst.Descriptor().Fields().ByName(protoreflect.Name(path[0]))
	if fd == nil {
		return fmt.Errorf("no field %q in %s", path[0], dst.Descriptor().FullName())
	}
	if len(path) > 1 {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			return fmt.Errorf("field %q is not a message", path[0])
		}
		if !src.Has(fd) {
			if dst.Has(fd) {
				return copyPath(dst.Mutable(fd).Message(), src.Get(fd).Message(), path[1:])
			}
			return nil
		}
		return copyPath(dst.Mutable(fd).Message(), src.Get(fd).Message(), path[1:])
	}
	if !src.Has(fd) {
		dst.Clear(fd)
		return nil
	}
	v := src.Get(fd)
	switch {
	case fd.IsList(), fd.IsMap(), fd.Kind() == protoreflect.MessageKind, fd.Kind() == protoreflect.GroupKind:
		// Deep-copy composite values so dst does not alias src.
		tmp := src.New()
		tmp.Set(fd, v)
		c := proto.Clone(tmp.Interface()).ProtoReflect()
		dst.Set(fd, c.Get(fd))
	default:
		dst.Set(fd, v)
	}
	return nil
}

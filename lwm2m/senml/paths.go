package senml

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/avc-agent/avc/lwm2m"
)

// DecodePathsJSON reads the body of a Read-Composite or Observe-Composite
// request in SenML-JSON: records that name paths (bn and n, resolved as in
// DecodeJSON) and carry no value (Core TS 1.1 §6.3.2). Paths must be
// absolute, from an object down to a resource instance, and are returned
// in the order given, without duplicates.
func DecodePathsJSON(b []byte) ([]lwm2m.Path, error) {
	if len(b) > MaxSize {
		return nil, ErrTooLarge
	}
	var recs []map[string]json.RawMessage
	if err := json.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	names := make([][2]*string, len(recs))
	for i, r := range recs {
		for k, raw := range r {
			switch k {
			case "bn", "n":
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return nil, fmt.Errorf("%w: record %d: %q is not a string", ErrFormat, i, k)
				}
				if k == "bn" {
					names[i][0] = &s
				} else {
					names[i][1] = &s
				}
			case "v", "vs", "vb", "vd", "vlo", "s":
				return nil, fmt.Errorf("%w: record %d: a path list carries no values", ErrFormat, i)
			default:
				if strings.HasSuffix(k, "_") {
					return nil, fmt.Errorf("%w: record %d: unsupported must-understand field %q", ErrFormat, i, k)
				}
			}
		}
	}
	return resolvePaths(names)
}

// DecodePathsCBOR is DecodePathsJSON for SenML-CBOR.
func DecodePathsCBOR(b []byte) ([]lwm2m.Path, error) {
	if len(b) > MaxSize {
		return nil, ErrTooLarge
	}
	if err := cborDecErr; err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	var recs []map[any]any
	if err := cborDec.Unmarshal(b, &recs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	names := make([][2]*string, len(recs))
	for i, r := range recs {
		for k, v := range r {
			var label int64
			switch k := k.(type) {
			case int64:
				label = k
			case uint64:
				if k > 1<<20 {
					return nil, fmt.Errorf("%w: record %d: label %d", ErrFormat, i, k)
				}
				label = int64(k)
			case string:
				if k == "vlo" {
					return nil, fmt.Errorf("%w: record %d: a path list carries no values", ErrFormat, i)
				}
				continue
			default:
				return nil, fmt.Errorf("%w: record %d: label of type %T", ErrFormat, i, k)
			}
			switch label {
			case labelBaseName, labelName:
				s, ok := v.(string)
				if !ok {
					return nil, fmt.Errorf("%w: record %d: name is not text", ErrFormat, i)
				}
				if label == labelBaseName {
					names[i][0] = &s
				} else {
					names[i][1] = &s
				}
			case 2, 3, 4, 5, 8:
				return nil, fmt.Errorf("%w: record %d: a path list carries no values", ErrFormat, i)
			}
		}
	}
	return resolvePaths(names)
}

// resolvePaths turns (bn, n) pairs into paths; bn persists until changed
// (RFC 8428 §4.5.1).
func resolvePaths(names [][2]*string) ([]lwm2m.Path, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no paths", ErrFormat)
	}
	bn := ""
	seen := make(map[lwm2m.Path]bool, len(names))
	out := make([]lwm2m.Path, 0, len(names))
	for i, nm := range names {
		if nm[0] != nil {
			bn = *nm[0]
		}
		n := ""
		if nm[1] != nil {
			n = *nm[1]
		}
		full := bn + n
		if !strings.HasPrefix(full, "/") || strings.Contains(full, "//") {
			return nil, fmt.Errorf("%w: record %d: path %q", ErrFormat, i, full)
		}
		p, err := lwm2m.ParsePath(full)
		if err != nil || p.Len == 0 {
			return nil, fmt.Errorf("%w: record %d: path %q", ErrFormat, i, full)
		}
		if seen[p] {
			return nil, fmt.Errorf("%w: record %d: path %s twice", ErrFormat, i, p)
		}
		seen[p] = true
		out = append(out, p)
	}
	return out, nil
}

// EncodePathsJSON writes the body of a Read-Composite or Observe-Composite
// request in SenML-JSON: one record per path, naming it with "n" only.
// Each path must name at least an object.
func EncodePathsJSON(paths []lwm2m.Path) ([]byte, error) {
	recs, err := pathRecords(paths)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(recs))
	for i, n := range recs {
		out[i] = map[string]string{"n": n}
	}
	return json.Marshal(out)
}

// EncodePathsCBOR is EncodePathsJSON for SenML-CBOR (label 0, the name).
func EncodePathsCBOR(paths []lwm2m.Path) ([]byte, error) {
	if err := cborEncErr; err != nil {
		return nil, err
	}
	recs, err := pathRecords(paths)
	if err != nil {
		return nil, err
	}
	out := make([]map[int]string, len(recs))
	for i, n := range recs {
		out[i] = map[int]string{0: n}
	}
	return cborEnc.Marshal(out)
}

func pathRecords(paths []lwm2m.Path) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("%w: no path", ErrFormat)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		if p.Len == 0 {
			return nil, fmt.Errorf("%w: path %d is the root", ErrFormat, i)
		}
		names[i] = p.String()
	}
	return names, nil
}

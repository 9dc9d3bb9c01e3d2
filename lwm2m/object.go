package lwm2m

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Operations is the set of operations a resource allows.
type Operations uint8

// Resource operations.
const (
	OpRead Operations = 1 << iota
	OpWrite
	OpExecute
)

// String formats the operations as in the OMA registry: "R", "W", "RW",
// "E" or "" (none).
func (o Operations) String() string {
	var b strings.Builder
	if o&OpRead != 0 {
		b.WriteByte('R')
	}
	if o&OpWrite != 0 {
		b.WriteByte('W')
	}
	if o&OpExecute != 0 {
		b.WriteByte('E')
	}
	return b.String()
}

// ResourceDef describes one resource of an object.
type ResourceDef struct {
	ID         uint16
	Name       string
	Operations Operations
	Multiple   bool // a multiple-instance resource
	Mandatory  bool
	Type       Type // TypeNone for executable resources
	Range      string
	Units      string
	// OnRead marks a resource whose value the host supplies when a server
	// reads it (a read callback) rather than ahead of time: the agent
	// asks the host for it before it answers (agent.EventReadRequest).
	// It is not part of the registry's XML format.
	OnRead bool
}

// ObjectDef describes an object as the OMA LwM2M registry does.
type ObjectDef struct {
	ID        uint16
	Name      string
	URN       string
	Version   string // object version, "1.0" when absent
	Multiple  bool   // a multiple-instance object
	Mandatory bool
	Resources []ResourceDef
}

// Resource returns the definition of resource id.
func (d *ObjectDef) Resource(id uint16) (*ResourceDef, bool) {
	for i := range d.Resources {
		if d.Resources[i].ID == id {
			return &d.Resources[i], true
		}
	}
	return nil, false
}

// ErrObjectXML wraps every error of ParseObjectXML.
var ErrObjectXML = errors.New("lwm2m: bad object definition")

// maxObjectXML bounds the size of an object definition document.
const maxObjectXML = 1 << 20

// xmlObject mirrors the OMA registry's LWM2M.xsd.
type xmlObject struct {
	Name              string `xml:"Name"`
	ObjectID          string `xml:"ObjectID"`
	ObjectURN         string `xml:"ObjectURN"`
	ObjectVersion     string `xml:"ObjectVersion"`
	MultipleInstances string `xml:"MultipleInstances"`
	Mandatory         string `xml:"Mandatory"`
	Items             []struct {
		ID                string `xml:"ID,attr"`
		Name              string `xml:"Name"`
		Operations        string `xml:"Operations"`
		MultipleInstances string `xml:"MultipleInstances"`
		Mandatory         string `xml:"Mandatory"`
		Type              string `xml:"Type"`
		RangeEnumeration  string `xml:"RangeEnumeration"`
		Units             string `xml:"Units"`
	} `xml:"Resources>Item"`
}

var xmlTypes = map[string]Type{
	"":                 TypeNone,
	"string":           TypeString,
	"integer":          TypeInteger,
	"unsigned integer": TypeUnsigned,
	"float":            TypeFloat,
	"boolean":          TypeBoolean,
	"opaque":           TypeOpaque,
	"time":             TypeTime,
	"objlnk":           TypeObjlnk,
	"corelnk":          TypeCoreLink,
}

// ParseObjectXML reads object definitions in the OMA LwM2M registry's XML
// format (LWM2M.xsd: <LWM2M><Object>…</Object></LWM2M>), as published for
// every registered object.
func ParseObjectXML(b []byte) ([]ObjectDef, error) {
	if len(b) > maxObjectXML {
		return nil, fmt.Errorf("%w: document of %d bytes exceeds %d", ErrObjectXML, len(b), maxObjectXML)
	}
	var doc struct {
		XMLName xml.Name
		Objects []xmlObject `xml:"Object"`
	}
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrObjectXML, err)
	}
	if doc.XMLName.Local != "LWM2M" {
		return nil, fmt.Errorf("%w: root element <%s>, want <LWM2M>", ErrObjectXML, doc.XMLName.Local)
	}
	if len(doc.Objects) == 0 {
		return nil, fmt.Errorf("%w: no <Object>", ErrObjectXML)
	}
	defs := make([]ObjectDef, 0, len(doc.Objects))
	for _, x := range doc.Objects {
		d, err := x.def()
		if err != nil {
			return nil, err
		}
		defs = append(defs, d)
	}
	return defs, nil
}

func parseID(s string) (uint16, error) {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
	if err != nil || n > MaxID {
		return 0, fmt.Errorf("ID %q", s)
	}
	return uint16(n), nil
}

func (x *xmlObject) def() (ObjectDef, error) {
	id, err := parseID(x.ObjectID)
	if err != nil {
		return ObjectDef{}, fmt.Errorf("%w: object %q: %v", ErrObjectXML, x.Name, err)
	}
	d := ObjectDef{
		ID:        id,
		Name:      strings.TrimSpace(x.Name),
		URN:       strings.TrimSpace(x.ObjectURN),
		Version:   strings.TrimSpace(x.ObjectVersion),
		Multiple:  strings.EqualFold(strings.TrimSpace(x.MultipleInstances), "Multiple"),
		Mandatory: strings.EqualFold(strings.TrimSpace(x.Mandatory), "Mandatory"),
	}
	if d.Version == "" {
		d.Version = "1.0"
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: object %d: %s", ErrObjectXML, id, fmt.Sprintf(format, args...))
	}
	seen := make(map[uint16]bool, len(x.Items))
	for _, it := range x.Items {
		rid, err := parseID(it.ID)
		if err != nil {
			return ObjectDef{}, bad("resource %v", err)
		}
		if seen[rid] {
			return ObjectDef{}, bad("resource %d defined twice", rid)
		}
		seen[rid] = true
		typ, ok := xmlTypes[strings.ToLower(strings.TrimSpace(it.Type))]
		if !ok {
			return ObjectDef{}, bad("resource %d: unknown type %q", rid, it.Type)
		}
		var ops Operations
		switch strings.ToUpper(strings.TrimSpace(it.Operations)) {
		case "R":
			ops = OpRead
		case "W":
			ops = OpWrite
		case "RW":
			ops = OpRead | OpWrite
		case "E":
			ops = OpExecute
		case "":
		default:
			return ObjectDef{}, bad("resource %d: unknown operations %q", rid, it.Operations)
		}
		if ops == OpExecute && typ != TypeNone {
			return ObjectDef{}, bad("resource %d: executable with type %s", rid, typ)
		}
		if ops != OpExecute && ops != 0 && typ == TypeNone {
			return ObjectDef{}, bad("resource %d: readable or writable without a type", rid)
		}
		d.Resources = append(d.Resources, ResourceDef{
			ID:         rid,
			Name:       strings.TrimSpace(it.Name),
			Operations: ops,
			Multiple:   strings.EqualFold(strings.TrimSpace(it.MultipleInstances), "Multiple"),
			Mandatory:  strings.EqualFold(strings.TrimSpace(it.Mandatory), "Mandatory"),
			Type:       typ,
			Range:      strings.TrimSpace(it.RangeEnumeration),
			Units:      strings.TrimSpace(it.Units),
		})
	}
	return d, nil
}

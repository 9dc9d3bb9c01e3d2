package server

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/plgd-dev/go-coap/v3/message/codes"
	"github.com/plgd-dev/go-coap/v3/message/pool"

	"github.com/avc-agent/avc/lwm2m"
)

// Attribute names, as they appear in Uri-Query options and in Discover
// (Core TS 1.1 §5.1.2, Table 5.1.2-2).
const (
	AttrPmin  = "pmin"  // Minimum Period, seconds
	AttrPmax  = "pmax"  // Maximum Period, seconds
	AttrGt    = "gt"    // Greater Than
	AttrLt    = "lt"    // Less Than
	AttrSt    = "st"    // Step
	AttrEpmin = "epmin" // Minimum Evaluation Period, seconds
	AttrEpmax = "epmax" // Maximum Evaluation Period, seconds
)

// attrNames lists the attribute names in the order queries sends them.
var attrNames = []string{AttrPmin, AttrPmax, AttrGt, AttrLt, AttrSt, AttrEpmin, AttrEpmax}

// Attributes are the notification attributes written by
// [Server.WriteAttributes] (Core TS 1.1 §5.1.2). A nil field leaves the
// attribute as it is on the client; Unset lists attributes to remove.
//
// Here's an example (Go 1.26's new(expr) makes the pointers):
//
//	// Notify at least every 60 s, at most every 10 s, and when the value
//	// crosses 20; forget any step attribute.
//	attrs := server.Attributes{Pmin: new(int64(10)), Pmax: new(int64(60)), Gt: new(20.0), Unset: []string{server.AttrSt}}
//	resp, err := s.WriteAttributes(ctx, "dev1", lwm2m.P(3, 0, 9), attrs)
//
// # Notes
//
//   - Periods are whole non-negative seconds; gt, lt and st are finite
//     numbers and apply to single numeric resources only (the client
//     checks that, and the consistency rules such as lt < gt).
//   - An attribute may not be both set and unset.
type Attributes struct {
	Pmin, Pmax   *int64   // Minimum and Maximum Period, seconds
	Epmin, Epmax *int64   // Minimum and Maximum Evaluation Period, seconds
	Gt, Lt, St   *float64 // Greater Than, Less Than, Step
	// Unset names attributes to remove (AttrPmin, ...): each is sent as a
	// bare name without value.
	Unset []string
}

// queries returns the Uri-Query options for a, in the order of attrNames
// and then the unset names. Its errors wrap ErrBadAttributes.
func (a Attributes) queries() ([]string, error) {
	ints := map[string]*int64{AttrPmin: a.Pmin, AttrPmax: a.Pmax, AttrEpmin: a.Epmin, AttrEpmax: a.Epmax}
	floats := map[string]*float64{AttrGt: a.Gt, AttrLt: a.Lt, AttrSt: a.St}
	var qs []string
	for _, name := range attrNames {
		if v := ints[name]; v != nil {
			if *v < 0 {
				return nil, fmt.Errorf("%w: %s %d is negative", ErrBadAttributes, name, *v)
			}
			qs = append(qs, name+"="+strconv.FormatInt(*v, 10))
		}
		if v := floats[name]; v != nil {
			if math.IsNaN(*v) || math.IsInf(*v, 0) {
				return nil, fmt.Errorf("%w: %s %g is not finite", ErrBadAttributes, name, *v)
			}
			qs = append(qs, name+"="+strconv.FormatFloat(*v, 'f', -1, 64))
		}
	}
	for _, name := range a.Unset {
		if !slices.Contains(attrNames, name) {
			return nil, fmt.Errorf("%w: unknown attribute %q", ErrBadAttributes, name)
		}
		if ints[name] != nil || floats[name] != nil {
			return nil, fmt.Errorf("%w: %s both set and unset", ErrBadAttributes, name)
		}
		qs = append(qs, name)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("%w: none given", ErrBadAttributes)
	}
	return qs, nil
}

// WriteAttributes sets or removes the notification attributes of the
// object, instance or resource at p on the client registered as ep (Core
// TS 1.1 §6.3.4, Transport TS 1.1 §6.4): a PUT with one Uri-Query option
// per attribute, such as "pmin=10" or a bare "st" to remove one, and no
// payload.
//
// # Notes
//
//   - Errors in attrs wrap ErrBadAttributes, and p must not be the root
//     (ErrBadPath).
//   - A non-2.xx answer (4.00 Bad Request for attributes the client
//     refuses) returns the Response with a *CodeError.
//   - The attributes govern the client's notifications of the
//     observations of p and of the paths below it; they apply to
//     observations made before and after.
func (s *Server) WriteAttributes(ctx context.Context, ep string, p lwm2m.Path, attrs Attributes) (*Response, error) {
	if p.Len == 0 {
		return nil, fmt.Errorf("server: write-attributes %s on %q: %w", p, ep, &inputError{ErrBadPath})
	}
	qs, err := attrs.queries()
	if err != nil {
		return nil, fmt.Errorf("server: write-attributes %s on %q: %w", p, ep, &inputError{err})
	}
	return s.exchange(ctx, ep, request{op: "write-attributes", method: codes.PUT, path: p,
		prepare: func(m *pool.Message, _ *registration) error {
			for _, q := range qs {
				m.AddQuery(q)
			}
			return nil
		}})
}

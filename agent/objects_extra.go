package agent

import (
	"time"

	"github.com/avc-agent/avc/lwm2m"
)

// Object definitions for Connectivity Monitoring /4, Location /6 and
// Connectivity Statistics /7 (OMA LwM2M registry, v1.0 objects as
// referenced by Core TS 1.1).
var (
	connMonDef = &objDef{id: 4, name: "Connectivity Monitoring", version: "1.0", res: []resDef{
		{0, "Network Bearer", lwm2m.TypeInteger, opR, false},
		{1, "Available Network Bearer", lwm2m.TypeInteger, opR, true},
		{2, "Radio Signal Strength", lwm2m.TypeInteger, opR, false},
		{3, "Link Quality", lwm2m.TypeInteger, opR, false},
		{4, "IP Addresses", lwm2m.TypeString, opR, true},
		{5, "Router IP Addresses", lwm2m.TypeString, opR, true},
		{6, "Link Utilization", lwm2m.TypeInteger, opR, false},
		{7, "APN", lwm2m.TypeString, opR, true},
		{8, "Cell ID", lwm2m.TypeInteger, opR, false},
		{9, "SMNC", lwm2m.TypeInteger, opR, false},
		{10, "SMCC", lwm2m.TypeInteger, opR, false},
	}}
	locationDef = &objDef{id: 6, name: "Location", version: "1.0", res: []resDef{
		{0, "Latitude", lwm2m.TypeFloat, opR, false},
		{1, "Longitude", lwm2m.TypeFloat, opR, false},
		{2, "Altitude", lwm2m.TypeFloat, opR, false},
		{3, "Radius", lwm2m.TypeFloat, opR, false},
		{4, "Velocity", lwm2m.TypeOpaque, opR, false},
		{5, "Timestamp", lwm2m.TypeTime, opR, false},
		{6, "Speed", lwm2m.TypeFloat, opR, false},
	}}
	connStatsDef = &objDef{id: 7, name: "Connectivity Statistics", version: "1.0", res: []resDef{
		{0, "SMS Tx Counter", lwm2m.TypeInteger, opR, false},
		{1, "SMS Rx Counter", lwm2m.TypeInteger, opR, false},
		{2, "Tx Data", lwm2m.TypeInteger, opR, false},
		{3, "Rx Data", lwm2m.TypeInteger, opR, false},
		{4, "Max Message Size", lwm2m.TypeInteger, opR, false},
		{5, "Average Message Size", lwm2m.TypeInteger, opR, false},
		{6, "Start", lwm2m.TypeNone, opE, false},
		{7, "Stop", lwm2m.TypeNone, opE, false},
		{8, "Collection Period", lwm2m.TypeInteger, opRW, false},
	}}
)

// Network bearer values of /4/0/0 used as defaults.
const bearerEthernet = 41

// addExtraObjects adds /4, /6 and /7. Connectivity Monitoring starts with
// an Ethernet bearer and no addresses until the host sets them (CmdSet);
// Location has no instance until the host sets a coordinate, so a device
// without positioning does not claim one; Connectivity Statistics is kept
// by the engine from the datagrams it sends and receives.
func (t *objectTree) addExtraObjects() {
	e := t.e
	t.add(&object{def: connMonDef, insts: map[uint16]*instance{0: {id: 0, vals: map[uint16]map[uint16]lwm2m.Value{
		0: single(lwm2m.Int(bearerEthernet)),
		1: {0: lwm2m.Int(bearerEthernet)},
		2: single(lwm2m.Int(0)),
		4: {0: lwm2m.String("0.0.0.0")},
	}}}})
	t.add(&object{def: locationDef, insts: map[uint16]*instance{}})
	t.add(&object{def: connStatsDef, insts: map[uint16]*instance{0: {id: 0, vals: map[uint16]map[uint16]lwm2m.Value{
		8: single(lwm2m.Int(0)),
	}}},
		dynamic: func(now time.Time, _, res uint16) (map[uint16]lwm2m.Value, bool) {
			st := &e.stats
			switch res {
			case 0, 1:
				return single(lwm2m.Int(0)), true // no SMS binding
			case 2:
				return single(lwm2m.Int(st.txBytes / 1024)), true
			case 3:
				return single(lwm2m.Int(st.rxBytes / 1024)), true
			case 4:
				return single(lwm2m.Int(st.maxSize)), true
			case 5:
				if st.msgs == 0 {
					return single(lwm2m.Int(0)), true
				}
				return single(lwm2m.Int((st.txBytes + st.rxBytes) / st.msgs)), true
			}
			return nil, false
		},
		exec: func(now time.Time, inst, res uint16, _ []byte) error {
			st := &e.stats
			switch res {
			case 6: // Start: reset the counters and collect
				period := t.objs[7].insts[0].vals[8][0].Int
				*st = connStats{collecting: true}
				if period > 0 {
					st.until = now.Add(time.Duration(period) * time.Second)
				}
			case 7: // Stop
				st.collecting = false
			}
			return nil
		},
	})
}

// connStats are the counters of Connectivity Statistics /7.
type connStats struct {
	collecting             bool
	until                  time.Time // end of the collection period (zero: none)
	txBytes, rxBytes, msgs int64
	maxSize                int64
}

// count records one datagram of n bytes when collecting.
func (s *connStats) count(now time.Time, n int, tx bool) {
	if !s.collecting {
		return
	}
	if !s.until.IsZero() && !now.Before(s.until) {
		s.collecting = false
		return
	}
	if tx {
		s.txBytes += int64(n)
	} else {
		s.rxBytes += int64(n)
	}
	s.msgs++
	s.maxSize = max(s.maxSize, int64(n))
}

// Package server is avc's embedded LwM2M 1.1 server. `make demo` runs it
// as the agent's peer (`avc server`), and tests use it as the default
// server to register with.
//
// It serves the Registration interface over CoAP/UDP, drives Device
// Management operations (Read, Write, Execute, Discover, Write-Attributes)
// and the Information Reporting interface (Observe, Cancel Observation) on
// registered clients, publishes registration events and offers an HTTP
// JSON API over all of this.
//
// # Registration interface (CoAP)
//
//   - POST /rd?ep={name}&lt={s}&lwm2m={1.0|1.1}&b={U|UQ|...}&sms=...
//     with a link-format payload (`</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>`)
//     registers a client and answers 2.01 Created with Location-Path
//     rd/{id}. A missing ep or a bad lt or b is 4.00 Bad Request, another
//     lwm2m version than 1.0 or 1.1 is 4.12 Precondition Failed. A new
//     registration of a registered endpoint replaces the old one. lt
//     defaults to 86400 s, b to "U", lwm2m to "1.0".
//   - POST /rd/{id} (Update, lt, b, sms and payload optional) answers
//     2.04 Changed; DELETE /rd/{id} (De-register) answers 2.02 Deleted.
//     An unknown id is 4.04 Not Found.
//   - A registration expires Config.ExpiryGrace after its lifetime ran out
//     without an Update.
//   - POST /dp (Send, Core TS 1.1 §6.4.3) with SenML-CBOR or SenML-JSON
//     values from a registered client answers 2.04 Changed and publishes an
//     EventSend with the decoded records; an unregistered client gets 4.04.
//
// # Events
//
// Every registration change is logged at Info level (for example
// `msg=registered ep=dev1 lifetime=300 binding=U lwm2m=1.1
// objects="</1/0>,</3/0>" addr=127.0.0.1:5555`) and published as an
// [Event] to the channels of [Server.Subscribe].
//
// # Observe and notification attributes
//
// [Server.Observe] sends a GET with Observe=0 and returns an
// [Observation] whose channel receives each notification, decoded as for
// Read. [Observation.Cancel] sends a GET with Observe=1 and the same token;
// a notification whose token belongs to no live observation (cancelled,
// ended with its registration, or unknown) is answered with RST, and a
// confirmable notification of a live one with an empty ACK. Observations
// end when the client's registration ends or is replaced by a new
// Register, and when the client notifies an error code.
// [Server.WriteAttributes] sets pmin, pmax, gt, lt, st, epmin and epmax
// (and removes them) with a PUT carrying Uri-Query options and no payload.
//
// # HTTP API
//
// When Config.HTTPAddr is set, the server also serves [Server.Handler]:
//
//	GET    /api/clients                                registered clients (array)
//	GET    /api/clients/{ep}                           one client
//	GET    /api/clients/{ep}/read/{path}               Read; ?format=tlv|senml-json|text|opaque|<number>
//	PUT    /api/clients/{ep}/write/{path}              Write (CoAP PUT, replace)
//	POST   /api/clients/{ep}/write/{path}              Write (CoAP POST, partial update of an instance)
//	POST   /api/clients/{ep}/create/{object}           Create; records name the new instance ("7/1" or "/3303/7/1")
//	DELETE /api/clients/{ep}/instances/{object}/{id}   Delete
//	POST   /api/clients/{ep}/read-composite            Read-Composite: {"paths":["/3/0/0","/1/0/1"],"format":"senml-cbor"}
//	POST   /api/clients/{ep}/write-composite           Write-Composite: {"records":[{"path":"/1/0/1","value":60}]}
//	POST   /api/clients/{ep}/execute/{path}            Execute; the body is the argument text
//	GET    /api/clients/{ep}/discover/{path}           Discover
//	PUT    /api/clients/{ep}/attributes/{path}         Write-Attributes; the body is the attributes
//	POST   /api/clients/{ep}/observe/{path}            Observe; ?format= as for Read
//	GET    /api/clients/{ep}/observations              the observations started over HTTP (array)
//	GET    /api/clients/{ep}/observations/{id}/events  notifications as Server-Sent Events
//	DELETE /api/clients/{ep}/observations/{id}         Cancel Observation
//	GET    /api/clients/{ep}/send/events               the client's Send operations as Server-Sent Events ("send")
//
// {path} is an LwM2M path without the leading slash, such as 3/0/0.
//
// A client is
//
//	{"endpoint":"dev1","id":"5f3a9c01","lifetime":300,"binding":"U","lwm2m":"1.1",
//	 "queue":false,"objects":["/1/0","/3/0"],"links":"</>;rt=\"oma.lwm2m\";ct=11543,</1/0>,</3/0>",
//	 "addr":"127.0.0.1:5555","registered":"...","updated":"...","expires":"..."}
//
// Read answers
//
//	{"code":"2.05","format":"tlv","records":[{"path":"/3/0/0","type":"string","value":"avc"}],
//	 "payload_hex":"c800036176..."}
//
// with values rendered by type: strings, numbers (time as Unix seconds),
// booleans, opaque as base64, object links as "3:0". Records are decoded
// from TLV and SenML JSON, and from text/plain and opaque for a single
// resource; other formats come back as payload_hex only.
//
// Write takes either one value for the resource at {path}, sent as
// text/plain unless "format" says otherwise:
//
//	{"value": 300}
//
// or records at or below {path} (absolute, or relative to {path}), sent as
// TLV unless "format" says otherwise:
//
//	{"records":[{"path":"/1/0/1","value":300},{"path":"7","value":"U"}],"format":"senml-json"}
//
// JSON values are converted with the resource's type from the server's
// table of the Security, Server and Device objects; a record may name its
// type ("type":"unsigned") for other resources, and otherwise the JSON
// kind decides (string, boolean, integer or float). Write and Execute
// answer {"code":"2.04"}, Delete {"code":"2.02"}, Create
// {"code":"2.01","location":"/3303/7"}. The composite operations take
// SenML JSON ("senml-json", the default) or SenML CBOR ("senml-cbor");
// Read-Composite answers like Read.
//
// Discover answers
//
//	{"code":"2.05","links":[{"target":"/3/0/1"},{"target":"/1/0/1","attrs":{"pmin":"10"}}],
//	 "payload":"</3/0/1>,..."}
//
// Write-Attributes takes the attributes to set, and names of attributes to
// remove, and answers {"code":"2.04"}:
//
//	{"pmin":0,"pmax":60,"gt":20.5,"lt":5,"st":1,"epmin":1,"epmax":30,"unset":["st"]}
//
// Observe answers 201 Created, with a Location header naming the
// observation (/api/clients/{ep}/observations/{id}), and the first value
// as Read renders it, plus the observation's ID:
//
//	{"id":"9c0f3a21","code":"2.05","format":"text",
//	 "records":[{"path":"/3/0/9","type":"integer","value":100}],"payload_hex":"313030"}
//
// The list of observations is [{"id":"9c0f3a21","path":"/3/0/9","format":"text"}].
//
// The events of an observation are a text/event-stream that lasts until
// the HTTP client goes away or the observation ends. Each notification is
// an event of the default type ("message") with the sequence number as its
// id and as data the notification rendered like Read, with its sequence
// number, arrival time, and an "error" when its payload could not be
// decoded:
//
//	id: 7
//	data: {"seq":7,"time":"2025-06-01T12:00:00Z","code":"2.05","format":"text","records":[...],"payload_hex":"3430"}
//
// When the observation ends, a last event of type "end" says why:
//
//	event: end
//	data: {"error":"server: observation cancelled"}
//
// One stream at a time reads an observation (another gets 409 Conflict);
// notifications that come while no stream reads wait in a buffer of
// Config.EventBuffer and are dropped beyond. Cancel answers with the
// client's code, {"code":"2.05"}; an unknown or ended observation is 404.
//
// Errors are {"error":"...","code":"4.04"}, "code" being the client's CoAP
// code when there is one. The HTTP status is 404 for an unknown client or
// observation, 400 for a bad path, format, body or attribute, 409 for a
// second event stream of an observation, and 502 when the client answered
// with an error code, answered something undecodable, did not answer
// within Config.RequestTimeout, or answered Observe without starting an
// observation.
//
// # Limits
//
// No DTLS, no Bootstrap interface, no Create, Delete, Send or composite
// operations; no block-wise notifications; queue mode is recorded but not
// honoured (requests are sent at once).
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §5.1.2, §6.2, §6.3 and §6.4,
// OMA-TS-LightweightM2M_Transport-V1_1_1 §6, and RFC 7641 (Observe).
package server

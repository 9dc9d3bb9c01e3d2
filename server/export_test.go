package server

// Exports of internals for the black-box tests.
var (
	TypeOf         = typeOf
	ParseJSONValue = parseJSONValue
	JSONValue      = jsonValue
)

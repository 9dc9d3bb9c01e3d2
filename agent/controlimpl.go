package agent

import "time"

// control is the engine's update control. Its implementation is not in
// this revision: newControl returns nil, so every update-control command
// answers ErrControlOff and Engine.Control returns an empty state.
type control struct{ e *Engine }

func newControl(e *Engine) *control { return nil }

func (c *control) state() ControlState { return ControlState{HTTPStatus: HTTPStatusUnknown} }

func (c *control) command(now time.Time, cmd Command) error { return ErrControlOff }

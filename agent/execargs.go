package agent

import "fmt"

// ExecArg is one argument of an Execute operation.
type ExecArg struct {
	Digit    int    // 0..9
	Value    string // the quoted value, without quotes
	HasValue bool
}

// ParseExecArgs parses Execute arguments (Core TS 1.1 §5.4.5): a
// comma-separated list of single digits, each optionally followed by
// ='value', where the value holds no quote. An empty payload has no
// arguments. Hosts receive the raw arguments in EventExecute.Data and may
// parse them with this function.
func ParseExecArgs(b []byte) ([]ExecArg, error) {
	var args []ExecArg
	seen := map[int]bool{}
	for i := 0; i < len(b); {
		c := b[i]
		if c < '0' || c > '9' {
			return nil, fmt.Errorf("agent: execute arguments: want a digit at %d, got %q", i, c)
		}
		a := ExecArg{Digit: int(c - '0')}
		if seen[a.Digit] {
			return nil, fmt.Errorf("agent: execute arguments: argument %d repeated", a.Digit)
		}
		seen[a.Digit] = true
		i++
		if i < len(b) && b[i] == '=' {
			if i+1 >= len(b) || b[i+1] != '\'' {
				return nil, fmt.Errorf("agent: execute arguments: want ' after = at %d", i)
			}
			j := i + 2
			for j < len(b) && b[j] != '\'' {
				// The value is "any printable character except
				// quotation mark" (%x21, %x23-26, %x28-7E and space).
				if b[j] < 0x20 || b[j] > 0x7e || b[j] == '"' {
					return nil, fmt.Errorf("agent: execute arguments: character %q at %d", b[j], j)
				}
				j++
			}
			if j >= len(b) {
				return nil, fmt.Errorf("agent: execute arguments: unterminated value")
			}
			a.Value, a.HasValue = string(b[i+2:j]), true
			i = j + 1
		}
		args = append(args, a)
		if i < len(b) {
			if b[i] != ',' || i+1 == len(b) {
				return nil, fmt.Errorf("agent: execute arguments: want , at %d", i)
			}
			i++
		}
	}
	return args, nil
}

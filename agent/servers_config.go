package agent

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ServerAccount is a further LwM2M DM server (Config.Servers). It becomes
// a Security (/0) and a Server (/1) instance of its own, like ServerURI.
type ServerAccount struct {
	// URI is the server, "coap://host[:port]" (port 5683 when omitted)
	// or "coaps://host[:port]" (DTLS, port 5684 when omitted; the native
	// driver only, New): each coaps server gets a DTLS session of its
	// own, with its own credential.
	URI string
	// ShortServerID identifies the server in /0, /1 and the access
	// control lists (1..65534); zero means the lowest ID above the first
	// server's that no other server uses.
	ShortServerID uint16
	// Lifetime is the server's registration lifetime (/1/x/1); zero means
	// Config.Lifetime.
	Lifetime time.Duration
	// PSKIdentity and PSKKey are the DTLS-PSK credential of a coaps
	// server (its Security instance's /0/x/3 and /0/x/5, Security mode 0).
	// Without them a coaps server is reached with the device's
	// certificate (Config.CertFile, KeyFile, CAFile; Security mode 2).
	// In AVC_SERVER_URIS ";psk_id=IDENTITY;psk_key=HEX"; the key is never
	// logged and Config.Get reads it back as "(set)".
	PSKIdentity string
	PSKKey      []byte
	// CertFile, KeyFile and CAFile name PEM files of this server's DTLS
	// session with certificates (Security mode 2), like Config.CertFile,
	// KeyFile and CAFile, which each empty one defaults to: a server
	// trusted through a CA of its own takes ";ca=FILE" alone, a device
	// with a certificate per server ";cert=FILE;key=FILE". Not with a
	// PSK. AVC_SERVER_URIS: ";cert=FILE;key=FILE;ca=FILE".
	CertFile, KeyFile, CAFile string
}

// certFiles returns the account's certificate files, each defaulting to
// c's; ok is false when the account has no certificate of its own.
func (a ServerAccount) certFiles(c *Config) (cert, key, ca string, ok bool) {
	ok = a.CertFile != "" || a.KeyFile != "" || a.CAFile != ""
	cert, key, ca = cmpOr(a.CertFile, c.CertFile), cmpOr(a.KeyFile, c.KeyFile), cmpOr(a.CAFile, c.CAFile)
	return cert, key, ca, ok
}

// cmpOr returns a, or b when a is empty.
func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// serverCertificates loads the DTLS certificate credential of every
// coaps further server with certificate files of its own, by URI.
func (c *Config) serverCertificates() (map[string]DTLSCredentials, error) {
	var out map[string]DTLSCredentials
	for _, a := range c.Servers {
		cert, key, ca, own := a.certFiles(c)
		if !own || len(a.PSKKey) > 0 {
			continue
		}
		cred, err := loadCertificate(cert, key, ca)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %v", ErrConfig, EnvServerURIs, a.URI, err)
		}
		if out == nil {
			out = map[string]DTLSCredentials{}
		}
		out[a.URI] = cred
	}
	return out, nil
}

// hasCertificate reports whether a certificate is configured for the
// server at uri: its own (ServerAccount.CertFile...) or the device's.
func (c *Config) hasCertificate(uri string) bool {
	for _, a := range c.Servers {
		if _, _, _, own := a.certFiles(c); own && a.URI == uri {
			return true
		}
	}
	return c.certConfigured()
}

// ACLRights are the access rights of an Access Control List entry
// (/2/x/2, Core TS 1.1 §E.3): one bit per operation.
type ACLRights uint8

// The access rights.
const (
	ACLRead    ACLRights = 1 << iota // Read, Observe, Discover, Write-Attributes
	ACLWrite                         // Write
	ACLExecute                       // Execute
	ACLDelete                        // Delete
	ACLCreate                        // Create (on the object's instance 65535)
	// ACLAll is every right.
	ACLAll = ACLRead | ACLWrite | ACLExecute | ACLDelete | ACLCreate
)

// ACLCreateInstance is the Object Instance ID of an Access Control
// instance that governs Create on its object (MAX_ID).
const ACLCreateInstance = 65535

// AccessControl is one Access Control object instance (Object 2).
type AccessControl struct {
	// ObjectID and InstanceID name the object instance it governs; an
	// InstanceID of ACLCreateInstance (65535) governs Create on ObjectID.
	ObjectID, InstanceID uint16
	// ACL holds the rights of each server by Short Server ID; the entry
	// with key 0 applies to the servers without one of their own.
	ACL map[uint16]ACLRights
	// Owner is the Short Server ID of the Access Control Owner, the one
	// server that may change this instance, and which has full access to
	// the object instance when ACL has no entry for it; zero means the
	// first server (ServerURI). 65535 means only a bootstrap server may
	// change it.
	Owner uint16
}

// parseServerURIs parses AVC_SERVER_URIS. Its errors never quote a key.
func parseServerURIs(value string) ([]ServerAccount, error) {
	var out []ServerAccount
	for _, item := range strings.Split(value, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		parts := strings.Split(item, ";")
		a := ServerAccount{URI: strings.TrimSpace(parts[0])}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok {
				// kv may be a mistyped key: it is not quoted.
				return nil, fmt.Errorf("%s: a parameter without \"=\": want ssid=N, lifetime=SECONDS, psk_id=IDENTITY, psk_key=HEX, cert=FILE, key=FILE or ca=FILE after the URI", a.URI)
			}
			switch k {
			case "ssid", "lifetime":
				n, err := strconv.ParseUint(v, 10, 32)
				switch {
				case err == nil && k == "ssid" && n >= 1 && n <= 65534:
					a.ShortServerID = uint16(n)
				case err == nil && k == "lifetime" && n >= 1:
					a.Lifetime = time.Duration(n) * time.Second
				default:
					return nil, fmt.Errorf("%q: want ssid=1..65534 or lifetime=1..4294967295", kv)
				}
			case "psk_id":
				if v == "" {
					return nil, fmt.Errorf("%s: empty psk_id", a.URI)
				}
				a.PSKIdentity = v
			case "psk_key":
				key, err := hex.DecodeString(v)
				if err != nil || len(key) == 0 {
					return nil, fmt.Errorf("%s: psk_key: want the key in hex", a.URI)
				}
				a.PSKKey = key
			case "cert", "key", "ca":
				if v == "" {
					return nil, fmt.Errorf("%s: empty %s: want a file name", a.URI, k)
				}
				*map[string]*string{"cert": &a.CertFile, "key": &a.KeyFile, "ca": &a.CAFile}[k] = v
			default:
				return nil, fmt.Errorf("%s: unknown parameter %q: want ssid=N, lifetime=SECONDS, psk_id=IDENTITY, psk_key=HEX, cert=FILE, key=FILE or ca=FILE after the URI", a.URI, k)
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// formatServerURIs is Config.Get's AVC_SERVER_URIS: keys read "(set)".
func formatServerURIs(srvs []ServerAccount) string {
	var items []string
	for _, a := range srvs {
		s := a.URI
		if a.ShortServerID != 0 {
			s += ";ssid=" + strconv.Itoa(int(a.ShortServerID))
		}
		if a.Lifetime != 0 {
			s += ";lifetime=" + strconv.FormatInt(int64(a.Lifetime/time.Second), 10)
		}
		if a.PSKIdentity != "" {
			s += ";psk_id=" + a.PSKIdentity
		}
		if len(a.PSKKey) > 0 {
			s += ";psk_key=(set)"
		}
		for _, f := range []struct{ k, v string }{{"cert", a.CertFile}, {"key", a.KeyFile}, {"ca", a.CAFile}} {
			if f.v != "" {
				s += ";" + f.k + "=" + f.v
			}
		}
		items = append(items, s)
	}
	return strings.Join(items, ",")
}

// parseRights parses rights as letters (r, w, e, d, c) or a number.
func parseRights(s string) (ACLRights, error) {
	if n, err := strconv.ParseUint(s, 10, 8); err == nil {
		if n > uint64(ACLAll) {
			return 0, fmt.Errorf("rights %q: want 0..31", s)
		}
		return ACLRights(n), nil
	}
	var r ACLRights
	for _, c := range s {
		i := strings.IndexRune("rwedc", c)
		if i < 0 {
			return 0, fmt.Errorf("rights %q: want letters r, w, e, d, c or a number 0..31", s)
		}
		r |= 1 << i
	}
	return r, nil
}

// String returns the rights as letters ("rw"), "-" for none.
func (r ACLRights) String() string {
	var b strings.Builder
	for i, c := range "rwedc" {
		if r&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// parseACL parses AVC_ACL.
func parseACL(value string) ([]AccessControl, error) {
	var out []AccessControl
	for _, entry := range strings.Split(value, ";") {
		fields := strings.Fields(entry)
		if len(fields) == 0 {
			continue
		}
		segs := strings.Split(strings.Trim(fields[0], "/"), "/")
		if len(segs) != 2 {
			return nil, fmt.Errorf("%q: want /OBJECT/INSTANCE first", fields[0])
		}
		obj, err1 := strconv.ParseUint(segs[0], 10, 16)
		inst, err2 := strconv.ParseUint(segs[1], 10, 16)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%q: want /OBJECT/INSTANCE first", fields[0])
		}
		ac := AccessControl{ObjectID: uint16(obj), InstanceID: uint16(inst), ACL: map[uint16]ACLRights{}}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				return nil, fmt.Errorf("%q: want owner=SSID or SSID=RIGHTS", f)
			}
			if k == "owner" {
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil || n == 0 {
					return nil, fmt.Errorf("%q: want owner=1..65535", f)
				}
				ac.Owner = uint16(n)
				continue
			}
			ssid, err := strconv.ParseUint(k, 10, 16)
			if err != nil || ssid > 65534 {
				return nil, fmt.Errorf("%q: want SSID=RIGHTS with SSID 0..65534", f)
			}
			r, err := parseRights(v)
			if err != nil {
				return nil, err
			}
			ac.ACL[uint16(ssid)] = r
		}
		out = append(out, ac)
	}
	return out, nil
}

func formatACL(acl []AccessControl) string {
	var entries []string
	for _, ac := range acl {
		s := fmt.Sprintf("/%d/%d", ac.ObjectID, ac.InstanceID)
		if ac.Owner != 0 {
			s += fmt.Sprintf(" owner=%d", ac.Owner)
		}
		keys := make([]uint16, 0, len(ac.ACL))
		for k := range ac.ACL {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s += fmt.Sprintf(" %d=%d", k, ac.ACL[k])
		}
		entries = append(entries, s)
	}
	return strings.Join(entries, "; ")
}

// extraServers returns Config.Servers with their Short Server IDs filled
// in: the lowest ID above the first server's that no server uses.
func (c *Config) extraServers() []ServerAccount {
	used := map[uint16]bool{c.ssid(): true}
	for _, a := range c.Servers {
		used[a.ShortServerID] = true
	}
	out := make([]ServerAccount, len(c.Servers))
	next := c.ssid()
	for i, a := range c.Servers {
		if a.ShortServerID == 0 {
			for next++; used[next] || next == 0 || next == 65535; next++ {
			}
			a.ShortServerID = next
			used[next] = true
		}
		if a.Lifetime == 0 {
			a.Lifetime = c.lifetime()
		}
		out[i] = a
	}
	return out
}

// validateServers checks Servers and AccessControl.
func (c *Config) validateServers() []error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...)))
	}
	if len(c.Servers) > 0 {
		if c.ServerURI == "" {
			bad("%s needs %s (the first server)", EnvServerURIs, EnvServerURI)
		}
		if c.binding() != "U" {
			bad("binding %q: queue mode is not supported with several servers", c.Binding)
		}
		if len(c.Servers)+1 > maxAccounts-1 {
			bad("%s: at most %d servers", EnvServerURIs, maxAccounts-1)
		}
	}
	seen := map[uint16]bool{c.ssid(): true}
	for _, a := range c.Servers {
		srv, err := parseURI(EnvServerURIs, a.URI)
		if err != nil {
			errs = append(errs, err)
		}
		hasPSK := a.PSKIdentity != "" || len(a.PSKKey) > 0
		cert, key, ca, ownCert := a.certFiles(c)
		switch {
		case err != nil:
		case srv.scheme == "coap":
			if hasPSK || ownCert {
				bad("%s=%q: a PSK or a certificate is for coaps:// servers", EnvServerURIs, a.URI)
			}
		case hasPSK && ownCert:
			bad("%s=%q: a PSK or certificate files, not both", EnvServerURIs, a.URI)
		case hasPSK && (a.PSKIdentity == "" || len(a.PSKKey) == 0):
			bad("%s=%q: coaps with a PSK needs both psk_id and psk_key", EnvServerURIs, a.URI)
		case !hasPSK && cert == "" && key == "" && ca == "":
			bad("%s=%q: coaps needs psk_id and psk_key, or certificate files (cert, key, ca, or the device's %s, %s, %s)", EnvServerURIs, a.URI, EnvCertFile, EnvKeyFile, EnvCAFile)
		case !hasPSK && (cert == "" || key == "" || ca == ""):
			bad("%s=%q: certificates need a certificate, its key and trust anchors (cert, key, ca, or the device's %s, %s, %s)", EnvServerURIs, a.URI, EnvCertFile, EnvKeyFile, EnvCAFile)
		case ownCert:
			if _, err := loadCertificate(cert, key, ca); err != nil {
				bad("%s=%q: %v", EnvServerURIs, a.URI, err)
			}
		}
		if a.ShortServerID == 65535 {
			bad("%s: short server ID 65535: want 1..65534", EnvServerURIs)
		}
		if a.ShortServerID != 0 {
			if seen[a.ShortServerID] {
				bad("%s: short server ID %d used twice", EnvServerURIs, a.ShortServerID)
			}
			seen[a.ShortServerID] = true
		}
		if a.Lifetime < 0 || a.Lifetime%time.Second != 0 || a.Lifetime > (1<<32-1)*time.Second {
			bad("%s: lifetime %v: want whole seconds up to 2^32-1", EnvServerURIs, a.Lifetime)
		}
	}
	for _, ac := range c.AccessControl {
		if ac.ObjectID == 0 || ac.ObjectID == 2 || ac.ObjectID == 65535 {
			bad("%s: object %d: access control governs objects 1 and 3..65534", EnvACL, ac.ObjectID)
		}
		for k, r := range ac.ACL {
			if k == 65535 || r > ACLAll {
				bad("%s: /%d/%d: entry %d=%d: want SSID 0..65534 and rights 0..31", EnvACL, ac.ObjectID, ac.InstanceID, k, r)
			}
		}
	}
	return errs
}

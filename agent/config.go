package agent

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/avc-agent/avc/fwpkg"
	"github.com/avc-agent/avc/lwm2m"
)

// Configuration names understood by every embedding. Environment variables
// with these names configure the agent; each API also accepts them by name.
const (
	EnvServerURI    = "AVC_SERVER_URI"
	EnvEndpoint     = "AVC_ENDPOINT"
	EnvLifetime     = "AVC_LIFETIME"
	EnvStateDir     = "AVC_STATE_DIR"
	EnvLogLevel     = "AVC_LOG_LEVEL"
	EnvPSKIdentity  = "AVC_PSK_IDENTITY"
	EnvPSKKey       = "AVC_PSK_KEY"
	EnvBootstrapURI = "AVC_BOOTSTRAP_URI"
	// DTLS with X.509 certificates (Security mode 2) for coaps servers.
	EnvCertFile = "AVC_CERT_FILE" // the client's certificate chain, PEM
	EnvKeyFile  = "AVC_KEY_FILE"  // its private key, PEM (PKCS#8, EC or RSA)
	EnvCAFile   = "AVC_CA_FILE"   // trust anchors for the server's certificate, PEM
	// Bootstrap server credentials and behaviour (factory bootstrap).
	EnvBootstrapPSKIdentity = "AVC_BOOTSTRAP_PSK_IDENTITY" // DTLS-PSK identity for a coaps bootstrap server; default AVC_PSK_IDENTITY
	EnvBootstrapPSKKey      = "AVC_BOOTSTRAP_PSK_KEY"      // and its key (hex, never logged); default AVC_PSK_KEY
	EnvBootstrapHoldOff     = "AVC_BOOTSTRAP_HOLD_OFF"     // seconds to wait before a Bootstrap-Request (/0/x/11)
	// Firmware update settings (Object 5).
	EnvFWVersion     = "AVC_FW_VERSION"           // running firmware version, /3/0/3
	EnvFWInstallCmd  = "AVC_FW_INSTALL_CMD"       // command run with the image path to install it
	EnvFWTrustedKeys = "AVC_FW_TRUSTED_KEYS"      // ed25519 public keys (hex or base64), comma-separated
	EnvFWRequireSig  = "AVC_FW_REQUIRE_SIGNATURE" // "true": refuse unsigned packages
	EnvFWCAFile      = "AVC_FW_CA_FILE"           // PEM trust anchors for https Package URIs
	EnvFWPSKIdentity = "AVC_FW_PSK_IDENTITY"      // DTLS-PSK identity for coaps Package URIs
	EnvFWPSKKey      = "AVC_FW_PSK_KEY"           // and its key (hex); default the server's PSK
	EnvFWConnect     = "AVC_FW_CONNECT_TIMEOUT"   // seconds a pull may take to get its first answer (300)
	EnvFWLowSpeed    = "AVC_FW_LOW_SPEED"         // "bytes/s,seconds": fail a pull slower than that for that long (100,1000)
	EnvFWNStart      = "AVC_FW_COAP_NSTART"       // block requests a coap(s) pull keeps in flight, 1..16 (1)
	// Several DM servers (Config.Servers) and their access control
	// (Config.AccessControl).
	EnvServerURIs = "AVC_SERVER_URIS" // further DM servers: "coap[s]://host[:port][;ssid=N][;lifetime=S][;psk_id=ID;psk_key=HEX][;cert=F;key=F;ca=F]", comma-separated
	EnvACL        = "AVC_ACL"         // Access Control /2 instances: "/OBJ/INST [owner=SSID] [SSID=RIGHTS]...", semicolon-separated

	// EnvReadTimeout is Config.ReadTimeout in whole seconds (1..93): how
	// long a read of on-demand resources waits for the host.
	EnvReadTimeout = "AVC_READ_TIMEOUT"
)

// ConfigNames lists the configuration names in a stable order.
var ConfigNames = []string{EnvServerURI, EnvEndpoint, EnvLifetime, EnvStateDir, EnvLogLevel, EnvPSKIdentity, EnvPSKKey, EnvBootstrapURI,
	EnvCertFile, EnvKeyFile, EnvCAFile,
	EnvBootstrapPSKIdentity, EnvBootstrapPSKKey, EnvBootstrapHoldOff,
	EnvFWVersion, EnvFWInstallCmd, EnvFWTrustedKeys, EnvFWRequireSig, EnvFWCAFile, EnvFWPSKIdentity, EnvFWPSKKey,
	EnvFWConnect, EnvFWLowSpeed, EnvFWNStart, EnvServerURIs, EnvACL, EnvReadTimeout}

// DefaultLifetime is the registration lifetime used when none is configured
// (LwM2M's own default for /1/x/1 is 86400 s).
const DefaultLifetime = 86400 * time.Second

// DeviceInfo describes the device as reported in the Device object /3.
// Empty fields are reported as the defaults noted.
type DeviceInfo struct {
	Manufacturer    string // /3/0/0, default "avc"
	Model           string // /3/0/1, default "avc-agent"
	Serial          string // /3/0/2, default the endpoint name
	FirmwareVersion string // /3/0/3, default "0.0.0"
	DeviceType      string // /3/0/17, default "agent"
	HardwareVersion string // /3/0/18, default "1.0"
	SoftwareVersion string // /3/0/19, default the avc version
	UTCOffset       string // /3/0/14, default "+00:00"
	Timezone        string // /3/0/15, default "UTC"
	// MemoryFree and MemoryTotal are /3/0/10 and /3/0/21 in KiB. The
	// native driver fills them from the operating system when zero.
	MemoryFree, MemoryTotal int64
}

// Config configures an [Engine] or an [Agent]. The zero value of every
// field is usable except Endpoint, which is required, and ServerURI and
// BootstrapURI, of which at least one is.
type Config struct {
	// ServerURI is the LwM2M server, "coap://host[:port]" (port 5683 when
	// omitted) or "coaps://host[:port]" (DTLS, port 5684 when omitted;
	// needs PSKIdentity and PSKKey, or CertFile, KeyFile and CAFile (or
	// CertPEM, KeyPEM and CAPEM), and a driver that carries DTLS: [New] or avc.wasm, see
	// CarryDTLS). AVC_SERVER_URI. It may be empty when BootstrapURI is
	// set: the bootstrap server then provides one.
	ServerURI string
	// Endpoint is the client endpoint name sent at registration.
	// AVC_ENDPOINT. ConfigFromEnv defaults it to "avc-" + the host name.
	Endpoint string
	// Lifetime is the registration lifetime; zero means DefaultLifetime.
	// AVC_LIFETIME, in seconds.
	Lifetime time.Duration
	// StateDir is where drivers keep persistent state; empty means no
	// persistence. The engine itself never touches files. AVC_STATE_DIR.
	StateDir string
	// StateStore, when set, keeps the engine's persistent state for the
	// native driver instead of the file StateFile under StateDir (a
	// host's flash; see StateStore).
	StateStore StateStore
	// LogLevel is the minimum level drivers log at. AVC_LOG_LEVEL: debug,
	// info, warn or error.
	LogLevel slog.Level
	// PSKIdentity and PSKKey are the DTLS pre-shared key credentials for
	// coaps:// servers. AVC_PSK_IDENTITY and AVC_PSK_KEY (hex).
	PSKIdentity string
	PSKKey      []byte
	// CertFile, KeyFile and CAFile name PEM files for DTLS with X.509
	// certificates (Security mode 2, cipher suites
	// TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 and _GCM_SHA256): the client's
	// certificate chain, its private key, and the trust anchors the
	// server's certificate must chain to. With both a PSK and a
	// certificate, the certificate is used. The server's certificate must
	// name the server's host (a DNS name, or an IP address SAN for an IP
	// literal, which is never sent as SNI). Raw public keys (mode 1) are
	// not supported: pion/dtls has no RFC 7250. AVC_CERT_FILE,
	// AVC_KEY_FILE, AVC_CA_FILE.
	CertFile, KeyFile, CAFile string
	// CertPEM, KeyPEM and CAPEM are the same three as PEM bytes, for
	// drivers without a file system (avc.wasm: avc_init's "cert_pem",
	// "key_pem" and "ca_pem", which its hosts read from AVC_CERT_FILE,
	// AVC_KEY_FILE and AVC_CA_FILE). When set they win over the files.
	CertPEM, KeyPEM, CAPEM []byte
	// BootstrapURI is the LwM2M bootstrap server (factory bootstrap: it
	// becomes the Bootstrap-Server account of the Security object). The
	// engine bootstraps from it when it has no usable DM server, when
	// every Register failed BootstrapAfterFailures times in a row, or
	// when the bootstrap server starts a session itself. Once bootstrapped,
	// the provisioned Security and Server objects are kept in the stored
	// state and replace ServerURI and the credentials on later starts.
	// See docs/BOOTSTRAP.md. AVC_BOOTSTRAP_URI.
	BootstrapURI string
	// BootstrapPSKIdentity and BootstrapPSKKey are the DTLS-PSK credential
	// of a coaps:// bootstrap server; empty means PSKIdentity and PSKKey.
	// AVC_BOOTSTRAP_PSK_IDENTITY, AVC_BOOTSTRAP_PSK_KEY (hex, never logged).
	BootstrapPSKIdentity string
	BootstrapPSKKey      []byte
	// BootstrapHoldOff is the Client Hold Off Time of the bootstrap
	// account (/0/x/11): how long the engine waits, once it has decided
	// to bootstrap, before it sends the Bootstrap-Request, leaving the
	// bootstrap server time to start a session itself.
	// AVC_BOOTSTRAP_HOLD_OFF, in seconds.
	BootstrapHoldOff time.Duration
	// BootstrapAfterFailures is how many consecutive failed Registers
	// (refused or unanswered) make the engine fall back to bootstrap,
	// when it has a bootstrap server; zero means 5 (the default of /1/x/17
	// Communication Retry Count), negative never.
	BootstrapAfterFailures int
	// Binding is the LwM2M binding mode; empty means "U".
	Binding string
	// Device fills the Device object.
	Device DeviceInfo
	// ShortServerID is the server's short ID in /0 and /1; zero means 1.
	ShortServerID uint16
	// Servers are further LwM2M DM servers beside ServerURI (the first
	// server). The engine registers with each one on its own: its own
	// lifetime, updates, retries and location; its requests are served
	// and its observations notified to it. With more than one server the
	// Access Control object /2 is enforced (AccessControl). coaps
	// servers need the native driver (New), which gives each its own DTLS
	// session and credential (ServerAccount.PSKIdentity, PSKKey, or
	// certificate files). Several servers work without queue mode
	// (Binding "UQ") only. AVC_SERVER_URIS: comma-separated URIs, each
	// optionally followed by ";ssid=N", ";lifetime=SECONDS",
	// ";psk_id=IDENTITY", ";psk_key=HEX", ";cert=FILE", ";key=FILE" and
	// ";ca=FILE".
	Servers []ServerAccount
	// AccessControl lists Access Control object instances (/2) that
	// replace the defaults the engine makes when more than one server is
	// configured: the first server owns every object instance (full
	// access) and may create instances, each other server owns its own
	// Server instance (/1) and may read (observe, discover) everything
	// else. An entry names the object instance it governs (InstanceID
	// 65535 for Create on the object). Ignored with a single server,
	// which has full access. AVC_ACL: semicolon-separated entries such as
	// "/3/0 owner=1 2=rwe 0=r" (rights as letters r, w, e, d, c or a
	// number 0..31; ACL key 0 is the default for servers without an
	// entry; the owner defaults to the first server).
	AccessControl []AccessControl
	// NotifyCONInterval is how often at most an Observe notification is
	// sent confirmable; zero means DefaultNotifyCONInterval (24 h), a
	// negative value means every notification is confirmable.
	NotifyCONInterval time.Duration
	// Objects declares objects beyond the built-in Security /0, Server /1,
	// Device /3, Connectivity Monitoring /4, Firmware Update /5, Location
	// /6, Connectivity Statistics /7 and Software Management /9, for
	// example from lwm2m.ParseObjectXML. A single-instance object starts
	// with instance 0; instances of a multiple-instance object appear
	// when the host sets a value in them (CmdSet). Their values are kept by the engine: the host sets them,
	// the server reads and writes them, and writes and executes reach the
	// host as events. A resource declared OnRead has its value given by
	// the host when a server reads it (EventReadRequest, CmdReadDone;
	// readcb.go).
	Objects []lwm2m.ObjectDef
	// BlockSize is the largest CoAP block (RFC 7959) the engine sends or
	// asks for: a power of two from 16 to 1024; zero means
	// DefaultBlockSize.
	BlockSize int
	// ReadTimeout is how long the engine waits for the host to complete
	// a read of resources declared with lwm2m.ResourceDef.OnRead
	// (EventReadRequest, CmdReadDone) before it answers the server from
	// the values it has; zero means DefaultReadTimeout (5 s).
	ReadTimeout time.Duration
	// QueueWindow is how long a queue-mode client (Binding "UQ") stays
	// reachable after each exchange; zero means MaxTransmitWait (93 s).
	QueueWindow time.Duration
	// Firmware configures firmware update (Object 5); the object exists
	// when Firmware.Handler is set. The native driver, New, defaults the
	// handler to a FileFirmware under StateDir.
	Firmware FirmwareConfig
	// Control configures update control (user agreements, install
	// blocking, polling and retry timers: the le_avc personality).
	Control ControlConfig
	// DTLSHandshakeTimeout bounds each DTLS handshake; zero means
	// DTLSHandshakeTimeout (30 s).
	DTLSHandshakeTimeout time.Duration
	// DTLSRetryDelay is the first wait after a failed DTLS handshake (or
	// a DTLS session that carried no registration); it doubles up to a
	// day. Zero means 60 s.
	DTLSRetryDelay time.Duration
	// NATTimeout: when nothing came from the server for this long, a
	// NAT binding may be gone, so before sending again the agent starts a
	// new DTLS session (and registers anew); le_avc_SetNatTimeout. Zero
	// means 40 s; negative disables.
	NATTimeout time.Duration
	// FirmwarePSKIdentity and FirmwarePSKKey are the DTLS-PSK credential
	// for coaps:// Package URIs; without them the server's PSK is used,
	// and without either coaps pulls are not offered (/5/0/8) unless a
	// handler chooses the credential (FirmwareSecurityProvider).
	// AVC_FW_PSK_IDENTITY, AVC_FW_PSK_KEY (hex, never logged).
	FirmwarePSKIdentity string
	FirmwarePSKKey      []byte
	// FirmwareCAFile names a PEM file of certificates trusted for https
	// Package URIs instead of the system's roots (a handler's
	// FirmwareSecurityProvider may replace it per pull). AVC_FW_CA_FILE.
	FirmwareCAFile string
	// FirmwareInstallCmd is the command FileFirmware runs to install an
	// image (its path is the one argument). AVC_FW_INSTALL_CMD.
	FirmwareInstallCmd string
	// Software configures Software Management (Object 9); the object
	// exists when Software.Handler is set, and the server creates its
	// instances. The native driver, New, defaults the handler to a
	// FileSoftware under StateDir.
	Software SoftwareConfig
	// Logger receives the engine's structured log; nil discards.
	Logger *slog.Logger
	// Rand is the source of message IDs and tokens; nil means crypto/rand.
	// Tests pass a seeded source to replay a run.
	Rand io.Reader

	// dtls is set by New, the one driver that can speak DTLS: without it a
	// coaps URI is refused rather than served in plaintext.
	dtls bool
	// dtlsServerOnly is set by CarryDTLS: DTLS to the LwM2M server only;
	// coaps Package URIs need dtlsPull besides.
	dtlsServerOnly bool
	// dtlsPull is set by CarryPullDTLS: the driver carries the DTLS
	// sessions of coaps Package URIs (PullLinks).
	dtlsPull bool
	// httpFetch is set by drivers that serve FetchRequests (HTTP(S)
	// pulls); /5/0/8 then lists HTTP and HTTPS.
	httpFetch bool
	// bgSync is set by drivers that run storage syncs on another
	// goroutine (pollSync, syncDone; see backgroundSyncer).
	bgSync bool
	// reuseState is set by drivers that are done with an EventStore's
	// Data before their next call into the engine (they copy it): the
	// engine then writes every state into one buffer it reuses, and
	// keeps at most one EventStore waiting to be polled, the latest
	// state (Engine.storePosition).
	reuseState bool
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("agent: bad configuration")

// Set assigns the setting called name (one of ConfigNames) from its string
// form, as read from the environment.
func (c *Config) Set(name, value string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %s=%q: %s", ErrConfig, name, value, why) }
	switch name {
	case EnvServerURI:
		c.ServerURI = value
	case EnvEndpoint:
		c.Endpoint = value
	case EnvLifetime:
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		if err != nil || n == 0 {
			return bad("want seconds, 1..4294967295")
		}
		c.Lifetime = time.Duration(n) * time.Second
	case EnvStateDir:
		c.StateDir = value
	case EnvLogLevel:
		var l slog.Level
		if err := l.UnmarshalText([]byte(value)); err != nil {
			return bad("want debug, info, warn or error")
		}
		c.LogLevel = l
	case EnvPSKIdentity:
		c.PSKIdentity = value
	case EnvPSKKey:
		k, err := hex.DecodeString(value)
		if err != nil {
			return bad("want hex")
		}
		c.PSKKey = k
	case EnvBootstrapURI:
		c.BootstrapURI = value
	case EnvCertFile:
		c.CertFile = value
	case EnvKeyFile:
		c.KeyFile = value
	case EnvCAFile:
		c.CAFile = value
	case EnvBootstrapPSKIdentity:
		c.BootstrapPSKIdentity = value
	case EnvBootstrapPSKKey:
		k, err := hex.DecodeString(value)
		if err != nil {
			return bad("want hex")
		}
		c.BootstrapPSKKey = k
	case EnvBootstrapHoldOff:
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		if err != nil {
			return bad("want seconds, 0..4294967295")
		}
		c.BootstrapHoldOff = time.Duration(n) * time.Second
	case EnvFWVersion:
		if len(value) > 255 {
			return bad("want at most 255 bytes")
		}
		c.Device.FirmwareVersion = value
	case EnvFWInstallCmd:
		c.FirmwareInstallCmd = value
	case EnvFWTrustedKeys:
		var keys []ed25519.PublicKey
		for _, s := range strings.Split(value, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			k, err := fwpkg.ParsePublicKey(s)
			if err != nil {
				return bad("want ed25519 public keys, hex or base64, comma-separated")
			}
			keys = append(keys, k)
		}
		c.Firmware.TrustedKeys = keys
	case EnvFWCAFile:
		c.FirmwareCAFile = value
	case EnvFWPSKIdentity:
		c.FirmwarePSKIdentity = value
	case EnvFWPSKKey:
		k, err := hex.DecodeString(value)
		if err != nil {
			return bad("want hex")
		}
		c.FirmwarePSKKey = k
	case EnvReadTimeout:
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		if err != nil || n == 0 || time.Duration(n)*time.Second > MaxTransmitWait {
			return bad("want seconds, 1..93")
		}
		c.ReadTimeout = time.Duration(n) * time.Second
	case EnvFWConnect:
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 32)
		if err != nil || n == 0 {
			return bad("want seconds, at least 1")
		}
		c.Firmware.ConnectTimeout = time.Duration(n) * time.Second
		c.Software.ConnectTimeout = c.Firmware.ConnectTimeout
	case EnvFWLowSpeed:
		rate, secs, ok := strings.Cut(value, ",")
		r, err1 := strconv.ParseUint(strings.TrimSpace(rate), 10, 32)
		d, err2 := strconv.ParseUint(strings.TrimSpace(secs), 10, 32)
		if !ok || err1 != nil || err2 != nil || r == 0 || d == 0 {
			return bad("want bytes per second and seconds, both at least 1: \"100,1000\"")
		}
		c.Firmware.LowSpeedLimit, c.Firmware.LowSpeedTime = int64(r), time.Duration(d)*time.Second
		c.Software.LowSpeedLimit, c.Software.LowSpeedTime = c.Firmware.LowSpeedLimit, c.Firmware.LowSpeedTime
	case EnvFWNStart:
		n, err := strconv.ParseUint(strings.TrimSpace(value), 10, 8)
		if err != nil || n < 1 || n > maxNStart {
			return bad(fmt.Sprintf("want 1 to %d block requests", maxNStart))
		}
		c.Firmware.NStart, c.Software.NStart = int(n), int(n)
	case EnvServerURIs:
		srvs, err := parseServerURIs(value)
		if err != nil {
			// The value may hold keys: it is not quoted.
			return fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
		}
		c.Servers = srvs
	case EnvACL:
		acl, err := parseACL(value)
		if err != nil {
			return bad(err.Error())
		}
		c.AccessControl = acl
	case EnvFWRequireSig:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return bad("want true or false")
		}
		c.Firmware.RequireSignature = b
	default:
		return fmt.Errorf("%w: unknown setting %q", ErrConfig, name)
	}
	return nil
}

// Get returns the string form of the setting called name, as Set accepts
// it. Secrets are never returned: AVC_PSK_KEY reads "(set)" or "".
func (c *Config) Get(name string) (string, error) {
	switch name {
	case EnvServerURI:
		return c.ServerURI, nil
	case EnvEndpoint:
		return c.Endpoint, nil
	case EnvLifetime:
		return strconv.FormatInt(int64(c.lifetime()/time.Second), 10), nil
	case EnvStateDir:
		return c.StateDir, nil
	case EnvLogLevel:
		return strings.ToLower(c.LogLevel.String()), nil
	case EnvPSKIdentity:
		return c.PSKIdentity, nil
	case EnvPSKKey:
		if len(c.PSKKey) > 0 {
			return "(set)", nil
		}
		return "", nil
	case EnvBootstrapURI:
		return c.BootstrapURI, nil
	case EnvCertFile:
		return c.CertFile, nil
	case EnvKeyFile:
		return c.KeyFile, nil
	case EnvCAFile:
		return c.CAFile, nil
	case EnvBootstrapPSKIdentity:
		return c.BootstrapPSKIdentity, nil
	case EnvBootstrapPSKKey:
		if len(c.BootstrapPSKKey) > 0 {
			return "(set)", nil
		}
		return "", nil
	case EnvBootstrapHoldOff:
		return strconv.FormatInt(int64(c.BootstrapHoldOff/time.Second), 10), nil
	case EnvFWVersion:
		return c.Device.FirmwareVersion, nil
	case EnvFWInstallCmd:
		return c.FirmwareInstallCmd, nil
	case EnvFWTrustedKeys:
		var ks []string
		for _, k := range c.Firmware.TrustedKeys {
			ks = append(ks, hex.EncodeToString(k))
		}
		return strings.Join(ks, ","), nil
	case EnvFWRequireSig:
		return strconv.FormatBool(c.Firmware.RequireSignature), nil
	case EnvFWCAFile:
		return c.FirmwareCAFile, nil
	case EnvFWPSKIdentity:
		return c.FirmwarePSKIdentity, nil
	case EnvFWPSKKey:
		if len(c.FirmwarePSKKey) > 0 {
			return "(set)", nil
		}
		return "", nil
	case EnvReadTimeout:
		return strconv.FormatInt(int64(c.readTimeout()/time.Second), 10), nil
	case EnvFWConnect:
		return strconv.FormatInt(int64(c.Firmware.limits().connect/time.Second), 10), nil
	case EnvFWLowSpeed:
		l := c.Firmware.limits()
		return fmt.Sprintf("%d,%d", l.lowSpeedLimit, int64(l.lowSpeedTime/time.Second)), nil
	case EnvFWNStart:
		return strconv.Itoa(c.Firmware.limits().nstart), nil
	case EnvServerURIs:
		return formatServerURIs(c.Servers), nil
	case EnvACL:
		return formatACL(c.AccessControl), nil
	}
	return "", fmt.Errorf("%w: unknown setting %q", ErrConfig, name)
}

// ApplyEnv sets every configuration name that lookup finds; lookup is
// usually os.LookupEnv. All problems are returned joined.
func (c *Config) ApplyEnv(lookup func(string) (string, bool)) error {
	var errs []error
	for _, name := range ConfigNames {
		if v, ok := lookup(name); ok && v != "" {
			errs = append(errs, c.Set(name, v))
		}
	}
	return errors.Join(errs...)
}

// ApplyMap sets every name in m; unknown names are errors. It is how the
// wasm and Node hosts pass configuration.
func (c *Config) ApplyMap(m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		errs = append(errs, c.Set(k, m[k]))
	}
	return errors.Join(errs...)
}

// ConfigFromEnv returns a Config read from the process environment, with
// the endpoint defaulting to "avc-" + the host name.
func ConfigFromEnv() (Config, error) {
	var c Config
	err := c.ApplyEnv(os.LookupEnv)
	if c.Endpoint == "" {
		h, herr := os.Hostname()
		if herr != nil || h == "" {
			h = "device"
		}
		c.Endpoint = "avc-" + h
	}
	return c, err
}

// Validate checks the configuration and returns every problem joined.
func (c *Config) Validate() error {
	var errs []error
	if c.ServerURI == "" && c.BootstrapURI == "" {
		// Without AVC_BOOTSTRAP_URI, that is: a bootstrap server can
		// provide the DM server.
		errs = append(errs, fmt.Errorf("%w: %s is required", ErrConfig, EnvServerURI))
	} else if c.ServerURI != "" {
		if srv, err := parseServerURI(c.ServerURI); err != nil {
			errs = append(errs, err)
		} else if srv.scheme == "coaps" {
			if err := c.validateDTLS(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, c.validateServers()...)
	if c.BootstrapURI != "" {
		if srv, err := parseURI(EnvBootstrapURI, c.BootstrapURI); err != nil {
			errs = append(errs, err)
		} else if srv.scheme == "coaps" && c.bootstrapPSK() == nil {
			errs = append(errs, fmt.Errorf("%w: %s=%q: coaps needs %s and %s (or %s and %s)", ErrConfig, EnvBootstrapURI, c.BootstrapURI, EnvBootstrapPSKIdentity, EnvBootstrapPSKKey, EnvPSKIdentity, EnvPSKKey))
		}
	}
	if c.BootstrapHoldOff < 0 || c.BootstrapHoldOff%time.Second != 0 {
		errs = append(errs, fmt.Errorf("%w: %s=%v: want whole seconds, at least 0", ErrConfig, EnvBootstrapHoldOff, c.BootstrapHoldOff))
	}
	if c.Endpoint == "" {
		errs = append(errs, fmt.Errorf("%w: %s is required", ErrConfig, EnvEndpoint))
	} else if len(c.Endpoint) > 255 || strings.ContainsAny(c.Endpoint, "&=?/ ") {
		errs = append(errs, fmt.Errorf("%w: %s=%q: want up to 255 characters without &=?/ or spaces", ErrConfig, EnvEndpoint, c.Endpoint))
	}
	if c.Lifetime < 0 || c.Lifetime%time.Second != 0 || c.Lifetime > (1<<32-1)*time.Second {
		errs = append(errs, fmt.Errorf("%w: %s=%v: want whole seconds up to 2^32-1", ErrConfig, EnvLifetime, c.Lifetime))
	}
	for _, d := range c.Objects {
		if builtinObject(d.ID) {
			errs = append(errs, fmt.Errorf("%w: object %d is built in", ErrConfig, d.ID))
		}
		for _, r := range d.Resources {
			if r.OnRead && r.Operations&lwm2m.OpRead == 0 {
				errs = append(errs, fmt.Errorf("%w: object %d resource %d: OnRead on a resource that is not readable", ErrConfig, d.ID, r.ID))
			}
		}
	}
	if c.ReadTimeout < 0 || c.ReadTimeout > MaxTransmitWait {
		errs = append(errs, fmt.Errorf("%w: read timeout %v: want 0 (the default) up to %v", ErrConfig, c.ReadTimeout, MaxTransmitWait))
	}
	if c.BlockSize != 0 {
		if _, ok := szxOf(c.BlockSize); !ok {
			errs = append(errs, fmt.Errorf("%w: block size %d: want a power of two from 16 to 1024", ErrConfig, c.BlockSize))
		}
	}
	switch c.binding() {
	case "U", "UQ":
	default:
		errs = append(errs, fmt.Errorf("%w: binding %q: want U or UQ", ErrConfig, c.Binding))
	}
	return errors.Join(errs...)
}

// sideDTLS reports whether the driver opens a DTLS session per coaps
// server beside its main socket (the native driver, New): what several
// servers need when one of them is coaps.
func (c *Config) sideDTLS() bool { return c.dtls && !c.dtlsServerOnly }

func (c *Config) dtlsRetryDelay() time.Duration {
	if c.DTLSRetryDelay > 0 {
		return c.DTLSRetryDelay
	}
	return retryBase
}

// fwPSK is the credential for coaps Package URIs: identity and key, or
// nil when there is none.
func (c *Config) fwPSK() *pskCred {
	switch {
	case c.FirmwarePSKIdentity != "" && len(c.FirmwarePSKKey) > 0:
		return &pskCred{identity: c.FirmwarePSKIdentity, key: c.FirmwarePSKKey}
	case c.PSKIdentity != "" && len(c.PSKKey) > 0:
		return &pskCred{identity: c.PSKIdentity, key: c.PSKKey}
	}
	return nil
}

// bootstrapPSK is the credential of a coaps bootstrap server, or nil.
func (c *Config) bootstrapPSK() *pskCred {
	switch {
	case c.BootstrapPSKIdentity != "" && len(c.BootstrapPSKKey) > 0:
		return &pskCred{identity: c.BootstrapPSKIdentity, key: c.BootstrapPSKKey}
	case c.BootstrapPSKIdentity == "" && len(c.BootstrapPSKKey) == 0 && c.PSKIdentity != "" && len(c.PSKKey) > 0:
		return &pskCred{identity: c.PSKIdentity, key: c.PSKKey}
	}
	return nil
}

// bootstrapAfter is the number of consecutive failed Registers after
// which the engine falls back to bootstrap (0: never).
func (c *Config) bootstrapAfter() int {
	switch {
	case c.BootstrapAfterFailures < 0:
		return 0
	case c.BootstrapAfterFailures == 0:
		return 5
	}
	return c.BootstrapAfterFailures
}

// pskCred is a DTLS pre-shared key credential.
type pskCred struct {
	identity string
	key      []byte
}

func (c *Config) handshakeTimeout() time.Duration {
	if c.DTLSHandshakeTimeout > 0 {
		return c.DTLSHandshakeTimeout
	}
	return DTLSHandshakeTimeout
}

func (c *Config) natTimeout() time.Duration {
	switch {
	case c.NATTimeout < 0:
		return 0
	case c.NATTimeout == 0:
		return 40 * time.Second
	}
	return c.NATTimeout
}

func (c *Config) lifetime() time.Duration {
	if c.Lifetime == 0 {
		return DefaultLifetime
	}
	return c.Lifetime
}

func (c *Config) binding() string {
	if c.Binding == "" {
		return "U"
	}
	return c.Binding
}

func (c *Config) ssid() uint16 {
	if c.ShortServerID == 0 {
		return 1
	}
	return c.ShortServerID
}

// ServerPeer returns the peer key ("host:port") under which an engine
// configured with uri addresses the server's datagrams: the URI's host
// (IPv6 in brackets) and port, 5683 by default (5684 for coaps). Drivers use it to resolve
// the server before the engine sends anything.
func ServerPeer(uri string) (string, error) {
	a, err := parseServerURI(uri)
	return a.peer, err
}

// serverAddr is a parsed server URI.
type serverAddr struct {
	scheme string // "coap" or "coaps"
	peer   string // host:port, the key datagrams are addressed by
}

func parseServerURI(s string) (serverAddr, error) { return parseURI(EnvServerURI, s) }

// parseURI parses a server URI; name is the setting it came from, for
// error messages.
func parseURI(name, s string) (serverAddr, error) {
	u, err := url.Parse(s)
	if err != nil {
		return serverAddr{}, fmt.Errorf("%w: %s=%q: %v", ErrConfig, name, s, err)
	}
	var port string
	switch u.Scheme {
	case "coap":
		port = "5683"
	case "coaps":
		port = "5684"
	default:
		return serverAddr{}, fmt.Errorf("%w: %s=%q: want coap://host[:port] or coaps://host[:port]", ErrConfig, name, s)
	}
	if u.Hostname() == "" {
		return serverAddr{}, fmt.Errorf("%w: %s=%q: no host", ErrConfig, name, s)
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return serverAddr{}, fmt.Errorf("%w: %s=%q: bad port", ErrConfig, name, s)
		}
		port = p
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return serverAddr{scheme: u.Scheme, peer: host + ":" + port}, nil
}

package agent

// EnablePullDrivers declares, for tests of the sans-I/O engine, a driver
// that carries coaps:// pulls over DTLS and serves HTTP(S) FetchRequests,
// as the native driver (New) does.
func EnablePullDrivers(c *Config) { c.dtls, c.httpFetch = true, true }

package toxitest

import "time"

// Toxic is a fault on a proxy's connections, as Toxiproxy's API takes it.
type Toxic struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Stream is "downstream" (server to client, the default) or
	// "upstream" (client to server).
	Stream string `json:"stream,omitempty"`
	// Toxicity is the share of connections it applies to, drawn per
	// connection; 0 means 1 (all), as Toxiproxy's own default.
	Toxicity   float64        `json:"toxicity,omitempty"`
	Attributes map[string]any `json:"attributes"`
}

// Direction streams.
const (
	Downstream = "downstream"
	Upstream   = "upstream"
)

func ms(d time.Duration) int64 { return d.Milliseconds() }

// Latency delays all data by latency ± jitter.
func Latency(name, stream string, latency, jitter time.Duration) Toxic {
	return Toxic{Name: name, Type: "latency", Stream: stream, Attributes: map[string]any{"latency": ms(latency), "jitter": ms(jitter)}}
}

// Bandwidth limits each connection to kbps kilobytes a second.
func Bandwidth(name, stream string, kbps int) Toxic {
	return Toxic{Name: name, Type: "bandwidth", Stream: stream, Attributes: map[string]any{"rate": kbps}}
}

// Timeout stops all data and closes the connection after timeout; with 0
// the connection stays open, data held back, until the toxic is removed:
// a stall, or a half-open connection when only one stream has it.
func Timeout(name, stream string, timeout time.Duration) Toxic {
	return Toxic{Name: name, Type: "timeout", Stream: stream, Attributes: map[string]any{"timeout": ms(timeout)}}
}

// ResetPeer resets the connection (TCP RST, unsent data discarded) after
// timeout from its first data.
func ResetPeer(name, stream string, timeout time.Duration) Toxic {
	return Toxic{Name: name, Type: "reset_peer", Stream: stream, Attributes: map[string]any{"timeout": ms(timeout)}}
}

// SlowClose holds a connection's close back by delay: the peer keeps
// talking to a connection whose other end is gone.
func SlowClose(name, stream string, delay time.Duration) Toxic {
	return Toxic{Name: name, Type: "slow_close", Stream: stream, Attributes: map[string]any{"delay": ms(delay)}}
}

// LimitData closes the connection once it has carried bytes bytes: a body
// cut mid-way, with a clean close.
func LimitData(name, stream string, bytes int64) Toxic {
	return Toxic{Name: name, Type: "limit_data", Stream: stream, Attributes: map[string]any{"bytes": bytes}}
}

// WithToxicity returns t applied to a share of the connections.
func (t Toxic) WithToxicity(share float64) Toxic {
	t.Toxicity = share
	return t
}

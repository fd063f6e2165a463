package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// Report is the result of one run, printed as a table or, with -json, as
// one JSON object. Rates and latencies cover the measurement window
// (after -warmup, for -duration); delivery verification covers every
// message of the run.
type Report struct {
	Scenario    string  `json:"scenario"`
	Target      string  `json:"target"` // "imserver", "raw" or "centrifuge"
	Transport   string  `json:"transport"`
	Conns       int     `json:"conns"`
	Window      int     `json:"window,omitempty"`
	Rate        float64 `json:"rate,omitempty"` // requested total msg/s; 0 closed-loop
	Size        int     `json:"size,omitempty"`
	DurationSec float64 `json:"duration_sec"`

	Sent            int64   `json:"sent"`
	Acked           int64   `json:"acked"`
	Delivered       int64   `json:"delivered"`
	AckedPerSec     float64 `json:"acked_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	AckP50Ms        float64 `json:"ack_p50_ms"`
	AckP90Ms        float64 `json:"ack_p90_ms"`
	AckP99Ms        float64 `json:"ack_p99_ms"`
	AckMaxMs        float64 `json:"ack_max_ms"`
	DeliverP50Ms    float64 `json:"deliver_p50_ms"`
	DeliverP90Ms    float64 `json:"deliver_p90_ms"`
	DeliverP99Ms    float64 `json:"deliver_p99_ms"`
	DeliverMaxMs    float64 `json:"deliver_max_ms"`

	// Verification, over the whole run.
	TotalSent  int64            `json:"total_sent"`
	TotalAcked int64            `json:"total_acked"`
	Errors     int64            `json:"errors"`
	ErrorKinds map[string]int64 `json:"error_kinds,omitempty"`
	Lost       int64            `json:"lost"`
	Duplicated int64            `json:"duplicated"`
	OutOfOrder int64            `json:"out_of_order"`
	SeqErrors  int64            `json:"seq_errors"`
	Gaps       int64            `json:"gaps"`
	Unexpected int64            `json:"unexpected"`
	OK         bool             `json:"ok"`

	// Resource use in the measurement window, when known.
	ServerCPUSec   *float64 `json:"server_cpu_sec,omitempty"`
	ClientCPUSec   *float64 `json:"client_cpu_sec,omitempty"`
	ServerRSSBytes *int64   `json:"server_rss_bytes,omitempty"`

	// connect scenario.
	ConnectPerSec float64 `json:"connect_per_sec,omitempty"`
	ConnectP50Ms  float64 `json:"connect_p50_ms,omitempty"`
	ConnectP99Ms  float64 `json:"connect_p99_ms,omitempty"`
	ConnectMaxMs  float64 `json:"connect_max_ms,omitempty"`
	Dropped       int64   `json:"dropped,omitempty"`
	// Growth of anonymous resident memory (RssAnon) per connection: VmRSS
	// would also count resident pages of the store's mapped file.
	ServerRSSPerConnBytes *float64 `json:"server_rss_per_conn_bytes,omitempty"`
	ClientRSSPerConnBytes *float64 `json:"client_rss_per_conn_bytes,omitempty"`

	// group scenario: Conns is Groups × Members; Senders is per group.
	// Delivered counts deliveries (a message reaches Members-1
	// connections); Lost and Duplicated count deliveries too.
	Groups  int `json:"groups,omitempty"`
	Members int `json:"members,omitempty"`
	Senders int `json:"senders,omitempty"`

	// sync scenario.
	SyncMessages int64   `json:"sync_messages,omitempty"`
	SyncPerSec   float64 `json:"sync_per_sec,omitempty"`
	SyncRequests int64   `json:"sync_requests,omitempty"`
	SyncFillSec  float64 `json:"sync_fill_sec,omitempty"`
	// Peak resident memory while the receiver caught up (VmHWM, reset
	// before the catch-up; it counts the pages of bbolt's mapped file the
	// server touched), and the highest anonymous resident memory
	// (RssAnon: heap, stacks) seen in samples every 10 ms meanwhile.
	ServerPeakRSSBytes  *int64 `json:"server_peak_rss_bytes,omitempty"`
	ClientPeakRSSBytes  *int64 `json:"client_peak_rss_bytes,omitempty"`
	ServerPeakAnonBytes *int64 `json:"server_peak_anon_bytes,omitempty"`
	ClientPeakAnonBytes *int64 `json:"client_peak_anon_bytes,omitempty"`

	// -compare-raw: the same load against the in-process raw server.
	// RawPerSec is its headline rate (headline), Ratio imserver's over it.
	RawPerSec *float64 `json:"raw_per_sec,omitempty"`
	Ratio     *float64 `json:"ratio,omitempty"`
	Raw       *Report  `json:"raw,omitempty"`

	// -compare-centrifuge: the same load against the centrifuge peer (in
	// imbench's process or -centrifuge-url's), over WebSocket whatever
	// -transport says.
	// CentrifugeRatio is imserver's headline rate over its.
	CentrifugePerSec *float64 `json:"centrifuge_per_sec,omitempty"`
	CentrifugeRatio  *float64 `json:"centrifuge_ratio,omitempty"`
	Centrifuge       *Report  `json:"centrifuge,omitempty"`
	// CFHistory, in the centrifuge report, is the in-memory history it
	// kept per channel (0: none).
	CFHistory int `json:"history,omitempty"`
	// CFOwnProcess, in the centrifuge report, is set when the peer ran in
	// a process of its own (-centrifuge-url): its history is what that
	// process was started with, and its CPU time is server_cpu_sec.
	CFOwnProcess bool `json:"own_process,omitempty"`

	verdict verdict
}

func (r *Report) setLatency(ack, push *histogram) {
	r.AckP50Ms, r.AckP90Ms, r.AckP99Ms, r.AckMaxMs = ms(ack.Quantile(0.5)), ms(ack.Quantile(0.9)), ms(ack.Quantile(0.99)), ms(ack.Max())
	r.DeliverP50Ms, r.DeliverP90Ms, r.DeliverP99Ms, r.DeliverMaxMs = ms(push.Quantile(0.5)), ms(push.Quantile(0.9)), ms(push.Quantile(0.99)), ms(push.Max())
}

// setUsage fills the resource use between two samples.
func (r *Report) setUsage(before, after usage) {
	// /proc counts in hundredths of a second; subtracting floats adds
	// noise below that.
	round := func(v float64) float64 { return math.Round(v*100) / 100 }
	if before.selfCPU >= 0 && after.selfCPU >= 0 {
		r.ClientCPUSec = ptr(round(after.selfCPU - before.selfCPU))
	}
	if before.serverCPU >= 0 && after.serverCPU >= 0 {
		r.ServerCPUSec = ptr(round(after.serverCPU - before.serverCPU))
	}
	if after.serverRSS >= 0 {
		r.ServerRSSBytes = ptr(after.serverRSS)
	}
}

func (r *Report) setVerdict(v verdict) {
	r.verdict = v
	r.Lost, r.Duplicated, r.OutOfOrder, r.SeqErrors, r.Gaps, r.Unexpected = v.Lost, v.Duplicated, v.OutOfOrder, v.SeqErrors, v.Gaps, v.Unexpected
	r.OK = r.Errors == 0 && v.failures() == 0
}

// compare attaches the raw run and the ratio of the headline rates.
func (r *Report) compare(raw *Report) {
	r.Raw = raw
	mine, theirs := r.headline(), raw.headline()
	r.RawPerSec = ptr(theirs)
	if theirs > 0 {
		r.Ratio = ptr(mine / theirs)
	} else {
		r.Ratio = ptr(0.0)
	}
	r.OK = r.OK && raw.OK
}

// comparePeer attaches the centrifuge run and the ratio of the headline
// rates.
func (r *Report) comparePeer(peer *Report) {
	r.Centrifuge = peer
	theirs := peer.headline()
	r.CentrifugePerSec = ptr(theirs)
	r.CentrifugeRatio = ptr(0.0)
	if theirs > 0 {
		r.CentrifugeRatio = ptr(r.headline() / theirs)
	}
	r.OK = r.OK && peer.OK
}

// headline is the rate a scenario is judged by: acked/s for direct,
// deliveries/s for group.
func (r *Report) headline() float64 {
	switch r.Scenario {
	case "connect":
		return r.ConnectPerSec
	case "sync":
		return r.SyncPerSec
	case "group":
		return r.DeliveredPerSec
	}
	return r.AckedPerSec
}

func ptr[T any](v T) *T { return &v }

func writeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// row is one line of the table.
type row struct {
	label string
	value func(r *Report) string
	// num, if set, is the row's figure as a number: the ratio column
	// shows imserver's over raw's.
	num func(r *Report) float64
}

func f0(v float64) string { return fmt.Sprintf("%.0f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }
func i0(v int64) string   { return fmt.Sprintf("%d", v) }

func optF(p *float64, f func(float64) string) string {
	if p == nil {
		return "-"
	}
	return f(*p)
}

func mib(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }

func optMiB(v *int64) string {
	if v == nil {
		return "-"
	}
	return mib(float64(*v))
}

func rowsFor(scenario string) []row {
	var rows []row
	switch scenario {
	case "connect":
		rows = []row{
			{"connects/s", func(r *Report) string { return f0(r.ConnectPerSec) }, func(r *Report) float64 { return r.ConnectPerSec }},
			{"connect+auth p50 ms", func(r *Report) string { return f2(r.ConnectP50Ms) }, nil},
			{"connect+auth p99 ms", func(r *Report) string { return f2(r.ConnectP99Ms) }, nil},
			{"connect+auth max ms", func(r *Report) string { return f2(r.ConnectMaxMs) }, nil},
			{"server mem per conn", func(r *Report) string {
				return optF(r.ServerRSSPerConnBytes, func(v float64) string { return fmt.Sprintf("%.1f KiB", v/1024) })
			}, nil},
			{"client mem per conn", func(r *Report) string {
				return optF(r.ClientRSSPerConnBytes, func(v float64) string { return fmt.Sprintf("%.1f KiB", v/1024) })
			}, nil},
			{"dropped while held", func(r *Report) string { return i0(r.Dropped) }, nil},
		}
	case "sync":
		rows = []row{
			{"synced messages", func(r *Report) string { return i0(r.SyncMessages) }, nil},
			{"sync msg/s", func(r *Report) string { return f0(r.SyncPerSec) }, func(r *Report) float64 { return r.SyncPerSec }},
			{"sync requests", func(r *Report) string { return i0(r.SyncRequests) }, nil},
			{"send acked/s (filling)", func(r *Report) string { return f0(r.AckedPerSec) }, nil},
			{"fill s", func(r *Report) string { return f2(r.SyncFillSec) }, nil},
			{"server peak RSS / anon", func(r *Report) string { return optMiB(r.ServerPeakRSSBytes) + " / " + optMiB(r.ServerPeakAnonBytes) }, nil},
			{"client peak RSS / anon", func(r *Report) string { return optMiB(r.ClientPeakRSSBytes) + " / " + optMiB(r.ClientPeakAnonBytes) }, nil},
			{"ack p50 ms", func(r *Report) string { return f2(r.AckP50Ms) }, nil},
			{"ack p99 ms", func(r *Report) string { return f2(r.AckP99Ms) }, nil},
		}
	default:
		acked := row{"acked/s", func(r *Report) string { return f0(r.AckedPerSec) }, func(r *Report) float64 { return r.AckedPerSec }}
		delivered := row{"delivered/s", func(r *Report) string { return f0(r.DeliveredPerSec) }, func(r *Report) float64 { return r.DeliveredPerSec }}
		rows = []row{acked, delivered}
		if scenario == "group" {
			rows = []row{delivered, acked}
		}
		rows = append(rows, []row{
			{"ack p50 ms", func(r *Report) string { return f2(r.AckP50Ms) }, nil},
			{"ack p90 ms", func(r *Report) string { return f2(r.AckP90Ms) }, nil},
			{"ack p99 ms", func(r *Report) string { return f2(r.AckP99Ms) }, nil},
			{"ack max ms", func(r *Report) string { return f2(r.AckMaxMs) }, nil},
			{"deliver p50 ms", func(r *Report) string { return f2(r.DeliverP50Ms) }, nil},
			{"deliver p90 ms", func(r *Report) string { return f2(r.DeliverP90Ms) }, nil},
			{"deliver p99 ms", func(r *Report) string { return f2(r.DeliverP99Ms) }, nil},
			{"deliver max ms", func(r *Report) string { return f2(r.DeliverMaxMs) }, nil},
			{"messages (all)", func(r *Report) string { return i0(r.TotalSent) }, nil},
		}...)
	}
	rows = append(rows,
		row{"errors", func(r *Report) string { return i0(r.Errors) }, nil},
		row{"lost", func(r *Report) string { return i0(r.Lost) }, nil},
		row{"duplicated", func(r *Report) string { return i0(r.Duplicated) }, nil},
		row{"out of order", func(r *Report) string { return i0(r.OutOfOrder) }, nil},
		row{"seq errors / gaps", func(r *Report) string { return i0(r.SeqErrors) + " / " + i0(r.Gaps) }, nil},
		row{"unexpected", func(r *Report) string { return i0(r.Unexpected) }, nil},
		row{"server CPU s", func(r *Report) string { return optF(r.ServerCPUSec, f2) }, nil},
		row{"client CPU s", func(r *Report) string { return optF(r.ClientCPUSec, f2) }, nil},
		row{"CPU µs per " + unitOf(scenario), func(r *Report) string {
			return optF(r.cpuPerUnit(), func(v float64) string { return fmt.Sprintf("%.1f", v) })
		}, nil},
		row{"server RSS", func(r *Report) string {
			if r.ServerRSSBytes == nil {
				return "-"
			}
			return mib(float64(*r.ServerRSSBytes))
		}, nil},
	)
	return rows
}

// unitOf names what the headline rate counts.
func unitOf(scenario string) string {
	switch scenario {
	case "group":
		return "delivery"
	case "connect":
		return "connection"
	}
	return "message"
}

// cpuPerUnit is the CPU time of the server and imbench together (an
// in-process server's is in imbench's) per unit of the headline rate, in
// microseconds: the work of the whole exchange, load generator included,
// which a shared machine's noise moves less than it moves rates. For
// imserver it needs -server-pid.
func (r *Report) cpuPerUnit() *float64 {
	if r.ClientCPUSec == nil || (r.ServerCPUSec == nil && r.Target == "imserver") {
		return nil
	}
	n := r.headline() * r.DurationSec
	if n <= 0 || r.Scenario == "connect" || r.Scenario == "sync" {
		return nil
	}
	cpu := *r.ClientCPUSec
	if r.ServerCPUSec != nil {
		cpu += *r.ServerCPUSec
	}
	return ptr(cpu / n * 1e6)
}

// writeTable prints the report for people: a headline, then one column per
// target and, with a raw comparison, the ratio.
func writeTable(w io.Writer, r *Report) error {
	mode := "closed-loop"
	if r.Rate > 0 {
		mode = fmt.Sprintf("open-loop at %.0f msg/s", r.Rate)
	}
	head := fmt.Sprintf("imbench %s over %s: %d connections", r.Scenario, r.Transport, r.Conns)
	if r.Scenario == "group" {
		groups := fmt.Sprintf("%d groups", r.Groups)
		if r.Groups == 1 {
			groups = "1 group"
		}
		head = fmt.Sprintf("imbench group over %s: %s of %d members, %d sending in each (%d connections)", r.Transport, groups, r.Members, r.Senders, r.Conns)
	}
	switch r.Scenario {
	case "direct", "raw", "group":
		head += fmt.Sprintf(", window %d, %s, %d-byte messages", r.Window, mode, r.Size)
	}
	head += fmt.Sprintf(", %s measured", (time.Duration(r.DurationSec * float64(time.Second))).Round(time.Millisecond))
	fmt.Fprintln(w, head)
	// One column per target, then imserver's figures over raw's and over
	// centrifuge's.
	targets := []*Report{r}
	var ratios []*Report
	cells := [][]string{{"", r.Target}}
	for _, o := range []*Report{r.Raw, r.Centrifuge} {
		if o != nil {
			targets = append(targets, o)
			cells[0] = append(cells[0], o.Target)
		}
	}
	if r.Raw != nil {
		ratios = append(ratios, r.Raw)
		cells[0] = append(cells[0], "ratio")
	}
	if r.Centrifuge != nil {
		ratios = append(ratios, r.Centrifuge)
		cells[0] = append(cells[0], "÷centrifuge")
	}
	for _, rw := range rowsFor(r.Scenario) {
		line := []string{rw.label}
		for _, t := range targets {
			line = append(line, rw.value(t))
		}
		for _, o := range ratios {
			ratio := ""
			if rw.num != nil {
				if b := rw.num(o); b > 0 {
					ratio = fmt.Sprintf("%.3f", rw.num(r)/b)
				}
			}
			line = append(line, ratio)
		}
		cells = append(cells, line)
	}
	// Labels flush left, figures flush right.
	widths := make([]int, len(cells[0]))
	for _, line := range cells {
		for i, c := range line {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, line := range cells {
		var b strings.Builder
		for i, c := range line {
			if i == 0 {
				b.WriteString(c + strings.Repeat(" ", widths[0]-utf8.RuneCountInString(c)))
			} else {
				b.WriteString("  " + strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)) + c)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	for _, rep := range targets {
		if rep == nil || len(rep.ErrorKinds) == 0 {
			continue
		}
		var parts []string
		for _, k := range sortedKinds(rep.ErrorKinds) {
			parts = append(parts, fmt.Sprintf("%s %d", k, rep.ErrorKinds[k]))
		}
		fmt.Fprintf(w, "%s errors: %s\n", rep.Target, strings.Join(parts, ", "))
		if rep.ErrorKinds["ERR_SEND_TOO_FAST"] > 0 {
			fmt.Fprintln(w, "  (SEND_TOO_FAST: the server's per-user send rate limit; run imserver with -send-rate -1 to measure it unthrottled)")
		}
		if rep.ErrorKinds["ERR_USER_NOT_EXIST"] > 0 {
			fmt.Fprintln(w, "  (USER_NOT_EXIST: the server only delivers to registered users; -synthetic-users needs one that does not check)")
		}
	}
	if r.Target == "raw" || r.Raw != nil {
		fmt.Fprintln(w, "(the raw server runs inside imbench: its CPU time is in imbench's)")
	}
	if c := r.Centrifuge; c != nil {
		history := "no history (its default)"
		if c.CFHistory > 0 {
			history = fmt.Sprintf("in-memory history of %d publications per channel", c.CFHistory)
		}
		where, cpu := "inside imbench", "its CPU time is in imbench's client CPU"
		if c.CFOwnProcess {
			where, history, cpu = "in a process of its own", "the history -serve-centrifuge was given", "its CPU time is that process's"
		}
		fmt.Fprintf(w, "(centrifuge runs %s, over WebSocket with its protobuf protocol, %s, storing nothing to disk; %s; its subscribers acknowledge nothing)\n", where, history, cpu)
	}
	verdict := "PASS: every acknowledged message was delivered exactly once, in order"
	switch r.Scenario {
	case "connect":
		verdict = "PASS: every connection authenticated and stayed up"
	case "group":
		verdict = "PASS: every acknowledged message reached every other member exactly once, in order"
	}
	if !r.OK {
		verdict = "FAIL: errors, lost, duplicated or misordered messages (see above)"
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}

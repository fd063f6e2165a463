package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    float64
		wantErr bool
	}{
		{"plain", "1234 (imserver) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0", 3.0, false},
		{"name with spaces and parens", "99 (a b) (c)) R 1 2 3 4 5 6 7 8 9 10 7 3 0 0", 0.1, false},
		{"no parens", "1234 imserver S 1 2 3", 0, true},
		{"too short", "1234 (x) S 1 2 3", 0, true},
		{"not a number", "1 (x) S 1 2 3 4 5 6 7 8 9 10 ab 3 0", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.in))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.InDelta(t, tt.want, got, 1e-9)
		})
	}
}

func TestStatusBytes(t *testing.T) {
	status := []byte("Name:\tx\nVmPeak:\t  9 kB\nVmRSS:\t    2048 kB\nRssAnon:\t  1024 kB\nThreads: 3\n")
	got, err := statusBytes(status, "VmRSS:")
	require.NoError(t, err)
	require.EqualValues(t, 2048*1024, got)
	got, err = statusBytes(status, "RssAnon:")
	require.NoError(t, err)
	require.EqualValues(t, 1024*1024, got)
	for _, bad := range []string{"Name: x\n", "VmRSS: 12 MB\n", "VmRSS: x kB\n", "VmRSS:\n"} {
		_, err := statusBytes([]byte(bad), "VmRSS:")
		require.Error(t, err, bad)
	}
}

func TestSampleUsageOfThisProcess(t *testing.T) {
	u := sampleUsage(0)
	require.GreaterOrEqual(t, u.selfCPU, 0.0)
	require.Greater(t, u.selfRSS, int64(0))
	require.Greater(t, u.selfAnon, int64(0))
	require.LessOrEqual(t, u.selfAnon, u.selfRSS)
	require.EqualValues(t, -1, u.serverCPU, "no server pid, no server figures")
	// A pid that cannot exist leaves the server figures unknown.
	u = sampleUsage(1 << 30)
	require.EqualValues(t, -1, u.serverRSS)
}

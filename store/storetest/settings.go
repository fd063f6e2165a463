package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
)

// testSettings checks im.ConversationSettingsStore, for stores that have
// it.
func testSettings(t *testing.T, h Harness) {
	if _, ok := open(t, h).(im.ConversationSettingsStore); !ok {
		t.Skip("storetest: the store does not implement im.ConversationSettingsStore")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s im.Store, cs im.ConversationSettingsStore)
	}{
		{"Unknown", testSettingsUnknown},
		{"Fields", testSettingsFields},
		{"Hidden", testSettingsHidden},
		{"Cleared", testSettingsCleared},
		{"NoOp", testSettingsNoOp},
		{"UpdatedAt", testSettingsUpdatedAt},
		{"ManyConversations", testSettingsManyConversations},
		{"Changed", testSettingsChanged},
		{"Invalid", testSettingsInvalid},
		{"Cancelled", testSettingsCancelled},
		{"Concurrent", testSettingsConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, h)
			cs, ok := s.(im.ConversationSettingsStore)
			if !ok {
				t.Fatal("storetest: Harness.Open returned stores of different types")
			}
			tt.fn(t, s, cs)
		})
	}
	t.Run("Durability", func(t *testing.T) { testSettingsDurability(t, h) })
}

// settingsTime is the i-th time the settings cases write: microseconds
// apart, each with a sub-millisecond part.
func settingsTime(i int) time.Time { return baseTime().Add(time.Duration(i) * time.Microsecond) }

func boolPtr(v bool) *bool  { return &v }
func seqPtr(v int64) *int64 { return &v }
func noSettings(user, conv string) im.ConversationSettings {
	return im.ConversationSettings{UserID: user, ConversationID: conv}
}

// settingsDiff describes how got differs from want, or returns "".
func settingsDiff(got, want im.ConversationSettings) string {
	if !got.UpdatedAt.Equal(want.UpdatedAt) {
		return fmt.Sprintf("%+v, want %+v (UpdatedAt differs)", got, want)
	}
	got.UpdatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	if got != want {
		return fmt.Sprintf("%+v, want %+v", got, want)
	}
	return ""
}

// changeSettings calls UpdateConversationSettings, failing t on error, and
// requires it to return want.
func changeSettings(t *testing.T, cs im.ConversationSettingsStore, user, conv string, ch im.SettingsChange, want im.ConversationSettings) {
	t.Helper()
	got, err := cs.UpdateConversationSettings(t.Context(), user, conv, ch)
	if err != nil {
		t.Fatalf("UpdateConversationSettings(%q, %q, %s): %v", user, conv, describeChange(ch), err)
	}
	if d := settingsDiff(got, want); d != "" {
		t.Errorf("UpdateConversationSettings(%q, %q, %s) = %s", user, conv, describeChange(ch), d)
	}
}

// describeChange shows the fields ch sets, for messages.
func describeChange(ch im.SettingsChange) string {
	var d []string
	if ch.Pinned != nil {
		d = append(d, fmt.Sprintf("Pinned:%v", *ch.Pinned))
	}
	if ch.Muted != nil {
		d = append(d, fmt.Sprintf("Muted:%v", *ch.Muted))
	}
	if ch.HiddenUpTo != nil {
		d = append(d, fmt.Sprintf("HiddenUpTo:%d", *ch.HiddenUpTo))
	}
	if ch.ClearedUpTo != nil {
		d = append(d, fmt.Sprintf("ClearedUpTo:%d", *ch.ClearedUpTo))
	}
	return "{" + strings.Join(append(d, "At:"+ch.At.Format(time.RFC3339Nano)), " ") + "}"
}

// wantSettings requires ConversationSettings(user, convs) to return want,
// in order.
func wantSettings(t *testing.T, cs im.ConversationSettingsStore, user string, convs []string, want ...im.ConversationSettings) {
	t.Helper()
	got, err := cs.ConversationSettings(t.Context(), user, convs)
	if err != nil {
		t.Fatalf("ConversationSettings(%q, %q): %v", user, convs, err)
	}
	if len(got) != len(want) {
		t.Fatalf("ConversationSettings(%q, %q) returned %d settings, want %d", user, convs, len(got), len(want))
	}
	for i := range got {
		if d := settingsDiff(got[i], want[i]); d != "" {
			t.Errorf("ConversationSettings(%q)[%d] = %s", user, i, d)
		}
	}
}

// changedSettings returns ChangedSettings(user, since) by conversation,
// failing t on error, duplicates or settings of another user.
func changedSettings(t *testing.T, cs im.ConversationSettingsStore, user string, since time.Time) map[string]im.ConversationSettings {
	t.Helper()
	got, err := cs.ChangedSettings(t.Context(), user, since)
	if err != nil {
		t.Fatalf("ChangedSettings(%q, %v): %v", user, since, err)
	}
	out := make(map[string]im.ConversationSettings, len(got))
	for _, st := range got {
		if st.UserID != user {
			t.Errorf("ChangedSettings(%q, %v) has settings of %q: %+v", user, since, st.UserID, st)
		}
		if _, dup := out[st.ConversationID]; dup {
			t.Errorf("ChangedSettings(%q, %v) lists %q twice", user, since, st.ConversationID)
		}
		out[st.ConversationID] = st
	}
	return out
}

// wantChanged requires ChangedSettings(user, since) to be exactly want, in
// any order.
func wantChanged(t *testing.T, cs im.ConversationSettingsStore, user string, since time.Time, want ...im.ConversationSettings) {
	t.Helper()
	got := changedSettings(t, cs, user, since)
	var missing []string
	for _, w := range want {
		g, ok := got[w.ConversationID]
		if !ok {
			missing = append(missing, w.ConversationID)
			continue
		}
		if d := settingsDiff(g, w); d != "" {
			t.Errorf("ChangedSettings(%q, %v) has %s", user, since, d)
		}
		delete(got, w.ConversationID)
	}
	if len(missing) > 0 {
		t.Errorf("ChangedSettings(%q, %v) misses %q", user, since, missing)
	}
	for conv, g := range got {
		t.Errorf("ChangedSettings(%q, %v) has %q, which it should not: %+v", user, since, conv, g)
	}
}

func testSettingsUnknown(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	wantSettings(t, cs, "alice", []string{conv, "group_none"}, noSettings("alice", conv), noSettings("alice", "group_none"))
	wantSettings(t, cs, "nobody", nil)
	wantSettings(t, cs, "nobody", []string{})
	wantChanged(t, cs, "alice", time.Time{})
	// A conversation with messages, where she has set nothing.
	sendN(t, s, conv, "bob", 2, "alice", "bob")
	wantSettings(t, cs, "alice", []string{conv}, noSettings("alice", conv))
	wantChanged(t, cs, "alice", time.Time{})
}

// Each field changes on its own; a nil field is left as it is, and other
// users and conversations are untouched.
func testSettingsFields(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv, other = "single_alice_bob", "group_fields"
	sendN(t, s, conv, "bob", 10, "alice", "bob")
	sendN(t, s, other, "bob", 10, "alice", "bob")
	want := noSettings("alice", conv)
	steps := []struct {
		ch  im.SettingsChange
		set func(st *im.ConversationSettings)
	}{
		{im.SettingsChange{Pinned: boolPtr(true)}, func(st *im.ConversationSettings) { st.Pinned = true }},
		{im.SettingsChange{Muted: boolPtr(true)}, func(st *im.ConversationSettings) { st.Muted = true }},
		{im.SettingsChange{HiddenUpTo: seqPtr(4)}, func(st *im.ConversationSettings) { st.HiddenUpTo = 4 }},
		{im.SettingsChange{ClearedUpTo: seqPtr(3)}, func(st *im.ConversationSettings) { st.ClearedUpTo = 3 }},
		{im.SettingsChange{Pinned: boolPtr(false)}, func(st *im.ConversationSettings) { st.Pinned = false }},
		{im.SettingsChange{HiddenUpTo: seqPtr(0)}, func(st *im.ConversationSettings) { st.HiddenUpTo = 0 }},
		{im.SettingsChange{Muted: boolPtr(false)}, func(st *im.ConversationSettings) { st.Muted = false }},
		{im.SettingsChange{Pinned: boolPtr(true), Muted: boolPtr(true), HiddenUpTo: seqPtr(6), ClearedUpTo: seqPtr(5)},
			func(st *im.ConversationSettings) {
				st.Pinned, st.Muted, st.HiddenUpTo, st.ClearedUpTo = true, true, 6, 5
			}},
		{im.SettingsChange{Muted: boolPtr(false), ClearedUpTo: seqPtr(7)},
			func(st *im.ConversationSettings) { st.Muted, st.ClearedUpTo = false, 7 }},
	}
	for i, step := range steps {
		step.ch.At = settingsTime(i + 1)
		step.set(&want)
		want.UpdatedAt = step.ch.At
		changeSettings(t, cs, "alice", conv, step.ch, want)
		wantSettings(t, cs, "alice", []string{conv}, want)
	}
	// Bob in the same conversation, and alice in another, set nothing.
	wantSettings(t, cs, "bob", []string{conv}, noSettings("bob", conv))
	wantSettings(t, cs, "alice", []string{other, conv}, noSettings("alice", other), want)
	// Theirs change nothing of hers.
	changeSettings(t, cs, "bob", conv, im.SettingsChange{Pinned: boolPtr(false), Muted: boolPtr(true), At: settingsTime(50)},
		im.ConversationSettings{UserID: "bob", ConversationID: conv, Muted: true, UpdatedAt: settingsTime(50)})
	changeSettings(t, cs, "alice", other, im.SettingsChange{ClearedUpTo: seqPtr(9), At: settingsTime(51)},
		im.ConversationSettings{UserID: "alice", ConversationID: other, ClearedUpTo: 9, UpdatedAt: settingsTime(51)})
	wantSettings(t, cs, "alice", []string{conv}, want)
}

// HiddenUpTo is stored as given, clamped to the newest message, and goes
// back to 0.
func testSettingsHidden(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	st := noSettings("alice", conv)
	for i, step := range []struct{ given, want int64 }{
		{3, 3},
		{100, 5}, // past the newest message
		{2, 2},   // backwards
		{0, 0},   // shown again
		{1 << 62, 5},
	} {
		st.HiddenUpTo, st.UpdatedAt = step.want, settingsTime(i+1)
		changeSettings(t, cs, "alice", conv, im.SettingsChange{HiddenUpTo: seqPtr(step.given), At: st.UpdatedAt}, st)
	}
	// A later message does not move it.
	sendN(t, s, conv, "bob", 3)
	wantSettings(t, cs, "alice", []string{conv}, st)
	st.HiddenUpTo, st.UpdatedAt = 8, settingsTime(10)
	changeSettings(t, cs, "alice", conv, im.SettingsChange{HiddenUpTo: seqPtr(9), At: st.UpdatedAt}, st)

	// A conversation without messages clamps to 0: nothing changes.
	changeSettings(t, cs, "alice", "group_empty", im.SettingsChange{HiddenUpTo: seqPtr(5), At: settingsTime(11)}, noSettings("alice", "group_empty"))
	sendN(t, s, "group_empty", "bob", 6)
	wantSettings(t, cs, "alice", []string{"group_empty"}, noSettings("alice", "group_empty"))
}

// ClearedUpTo only moves forward, clamped to the newest message.
func testSettingsCleared(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 10, "alice", "bob")
	st := noSettings("alice", conv)
	for i, step := range []struct {
		given, want int64
		moves       bool
	}{
		{5, 5, true},
		{3, 5, false}, // backwards: nothing changes
		{0, 5, false},
		{8, 8, true},
		{1 << 62, 10, true}, // past the newest message
		{10, 10, false},
	} {
		if step.moves {
			st.UpdatedAt = settingsTime(i + 1)
		}
		st.ClearedUpTo = step.want
		changeSettings(t, cs, "alice", conv, im.SettingsChange{ClearedUpTo: seqPtr(step.given), At: settingsTime(i + 1)}, st)
		wantSettings(t, cs, "alice", []string{conv}, st)
	}
	sendN(t, s, conv, "bob", 2)
	wantSettings(t, cs, "alice", []string{conv}, st)
	// With another field: that one changes, ClearedUpTo stays.
	st.Pinned, st.UpdatedAt = true, settingsTime(20)
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Pinned: boolPtr(true), ClearedUpTo: seqPtr(2), At: st.UpdatedAt}, st)
	st.ClearedUpTo, st.UpdatedAt = 11, settingsTime(21)
	changeSettings(t, cs, "alice", conv, im.SettingsChange{ClearedUpTo: seqPtr(11), At: st.UpdatedAt}, st)

	// A conversation without messages clamps to 0.
	changeSettings(t, cs, "alice", "group_empty", im.SettingsChange{ClearedUpTo: seqPtr(4), At: settingsTime(22)}, noSettings("alice", "group_empty"))
	sendN(t, s, "group_empty", "bob", 6)
	wantSettings(t, cs, "alice", []string{"group_empty"}, noSettings("alice", "group_empty"))
}

// A change that leaves every field as it was stores nothing: UpdatedAt
// stays, and ChangedSettings does not list it again.
func testSettingsNoOp(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	none := noSettings("alice", conv)
	for _, ch := range []im.SettingsChange{
		{},
		{Pinned: boolPtr(false), Muted: boolPtr(false), HiddenUpTo: seqPtr(0), ClearedUpTo: seqPtr(0)},
	} {
		ch.At = settingsTime(1)
		changeSettings(t, cs, "alice", conv, ch, none)
	}
	wantSettings(t, cs, "alice", []string{conv}, none)
	wantChanged(t, cs, "alice", time.Time{})

	t1 := settingsTime(2)
	st := im.ConversationSettings{UserID: "alice", ConversationID: conv, Pinned: true, HiddenUpTo: 5, ClearedUpTo: 2, UpdatedAt: t1}
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Pinned: boolPtr(true), HiddenUpTo: seqPtr(7), ClearedUpTo: seqPtr(2), At: t1}, st)
	for i, ch := range []im.SettingsChange{
		{},
		{Pinned: boolPtr(true)},
		{Muted: boolPtr(false)},
		{HiddenUpTo: seqPtr(5)},
		{HiddenUpTo: seqPtr(9)},  // clamps to what it is
		{ClearedUpTo: seqPtr(1)}, // backwards
		{ClearedUpTo: seqPtr(2)}, // the same
		{Pinned: boolPtr(true), Muted: boolPtr(false), HiddenUpTo: seqPtr(5), ClearedUpTo: seqPtr(0)},
	} {
		ch.At = settingsTime(10 + i)
		changeSettings(t, cs, "alice", conv, ch, st)
	}
	wantSettings(t, cs, "alice", []string{conv}, st)
	wantChanged(t, cs, "alice", t1)
	wantChanged(t, cs, "alice", time.Time{}, st)
	st.Muted, st.UpdatedAt = true, settingsTime(30)
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Muted: boolPtr(true), At: st.UpdatedAt}, st)
	wantChanged(t, cs, "alice", t1, st)
}

// UpdatedAt is the change's At, kept to the microsecond; its location
// does not matter.
func testSettingsUpdatedAt(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	t1 := baseTime() // …26.535897
	st := im.ConversationSettings{UserID: "alice", ConversationID: conv, Pinned: true, UpdatedAt: t1}
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Pinned: boolPtr(true), At: t1}, st)
	wantSettings(t, cs, "alice", []string{conv}, st)
	wantChanged(t, cs, "alice", time.Time{}, st)
	// One microsecond later, in another zone.
	t2 := t1.Add(time.Microsecond).In(time.FixedZone("UTC+8", 8*3600))
	st.Muted, st.UpdatedAt = true, t2
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Muted: boolPtr(true), At: t2}, st)
	wantSettings(t, cs, "alice", []string{conv}, st)
	wantChanged(t, cs, "alice", t1, st)
	wantChanged(t, cs, "alice", t2)
	got, err := cs.ConversationSettings(t.Context(), "alice", []string{conv})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].UpdatedAt.Sub(t1) != time.Microsecond {
		t.Errorf("UpdatedAt = %v, %v after the previous one; want 1µs", got[0].UpdatedAt, got[0].UpdatedAt.Sub(t1))
	}
}

// ConversationSettings answers for many conversations at once, in the
// order asked, duplicates included; ChangedSettings lists them all.
func testSettingsManyConversations(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const n = 1500
	convs := make([]string, n)
	var batch []im.AppendRequest
	for i := range convs {
		convs[i] = fmt.Sprintf("group_set%04d", i)
		batch = append(batch, im.AppendRequest{Message: newMessage(convs[i], "bob", fmt.Sprintf("set-%d", i)), Members: []string{"alice", "bob"}})
	}
	appendNew(t, s, batch)
	want := make(map[string]im.ConversationSettings)
	for i, c := range convs {
		st := noSettings("alice", c)
		var ch im.SettingsChange
		if i%37 == 1 {
			ch.Pinned, st.Pinned = boolPtr(true), true
		}
		if i%53 == 2 || i%37 == 1 && i%2 == 0 {
			ch.Muted, st.Muted = boolPtr(true), true
		}
		if i%71 == 3 {
			ch.ClearedUpTo, st.ClearedUpTo = seqPtr(1), 1
		}
		if ch == (im.SettingsChange{}) {
			continue
		}
		ch.At, st.UpdatedAt = settingsTime(i), settingsTime(i)
		changeSettings(t, cs, "alice", c, ch, st)
		want[c] = st
	}
	// Bob's, in the same conversations, are his own.
	changeSettings(t, cs, "bob", convs[1], im.SettingsChange{Muted: boolPtr(true), At: settingsTime(0)},
		im.ConversationSettings{UserID: "bob", ConversationID: convs[1], Muted: true, UpdatedAt: settingsTime(0)})

	// Asked in reverse, with some asked twice and one never written to.
	ask := slices.Clone(convs)
	slices.Reverse(ask)
	ask = append(ask, convs[1], convs[0], "group_unknown", convs[1])
	ask = slices.Insert(ask, 700, convs[38], convs[38])
	got, err := cs.ConversationSettings(t.Context(), "alice", ask)
	if err != nil {
		t.Fatalf("ConversationSettings: %v", err)
	}
	if len(got) != len(ask) {
		t.Fatalf("ConversationSettings returned %d settings for %d conversations", len(got), len(ask))
	}
	for i, g := range got {
		w, ok := want[ask[i]]
		if !ok {
			w = noSettings("alice", ask[i])
		}
		if d := settingsDiff(g, w); d != "" {
			t.Fatalf("ConversationSettings[%d] (%q) = %s", i, ask[i], d)
		}
	}
	all := make([]im.ConversationSettings, 0, len(want))
	for _, st := range want {
		all = append(all, st)
	}
	wantChanged(t, cs, "alice", time.Time{}, all...)
}

// ChangedSettings lists the user's settings changed strictly after since,
// and only hers.
func testSettingsChanged(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const a, b, c, d = "single_alice_bob", "group_ch1", "group_ch2", "group_ch3"
	for _, conv := range []string{a, b, c, d} {
		sendN(t, s, conv, "bob", 3, "alice", "bob")
	}
	t1, t2, t3 := settingsTime(10), settingsTime(20), settingsTime(30)
	set := func(user, conv string, ch im.SettingsChange) im.ConversationSettings {
		t.Helper()
		got, err := cs.UpdateConversationSettings(t.Context(), user, conv, ch)
		if err != nil {
			t.Fatalf("UpdateConversationSettings(%q, %q): %v", user, conv, err)
		}
		return got
	}
	sa := set("alice", a, im.SettingsChange{Pinned: boolPtr(true), At: t1})
	sb := set("alice", b, im.SettingsChange{Muted: boolPtr(true), At: t2})
	sc := set("alice", c, im.SettingsChange{HiddenUpTo: seqPtr(2), At: t3})
	// Other users, including ones whose ids start like hers, or hers like
	// theirs.
	bob := set("bob", a, im.SettingsChange{Muted: boolPtr(true), At: t2})
	ali := set("ali", a, im.SettingsChange{Pinned: boolPtr(true), At: t3})
	alice2 := set("alice2", b, im.SettingsChange{Pinned: boolPtr(true), At: t3})
	set("alic", d, im.SettingsChange{Pinned: boolPtr(true), At: t3})

	wantChanged(t, cs, "alice", time.Time{}, sa, sb, sc)
	wantChanged(t, cs, "alice", t1.Add(-time.Microsecond), sa, sb, sc)
	wantChanged(t, cs, "alice", t1, sb, sc)
	wantChanged(t, cs, "alice", t2.Add(-time.Microsecond), sb, sc)
	wantChanged(t, cs, "alice", t2, sc)
	wantChanged(t, cs, "alice", t3)
	wantChanged(t, cs, "alice", t3.Add(time.Hour))
	wantChanged(t, cs, "bob", time.Time{}, bob)
	wantChanged(t, cs, "ali", time.Time{}, ali)
	wantChanged(t, cs, "alice2", t2, alice2)
	wantChanged(t, cs, "carol", time.Time{})

	// Settings changed back to nothing are still listed, so that a client
	// learns of the change.
	t4, t5 := settingsTime(40), settingsTime(50)
	set("alice", d, im.SettingsChange{Pinned: boolPtr(true), At: t4})
	sd := set("alice", d, im.SettingsChange{Pinned: boolPtr(false), At: t5})
	if w := (im.ConversationSettings{UserID: "alice", ConversationID: d, UpdatedAt: t5}); settingsDiff(sd, w) != "" {
		t.Errorf("unpinning returned %s", settingsDiff(sd, w))
	}
	wantChanged(t, cs, "alice", t4, sd)
	wantChanged(t, cs, "alice", time.Time{}, sa, sb, sc, sd)
}

func testSettingsInvalid(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 5, "alice", "bob")
	at := settingsTime(1)
	for _, bad := range []struct {
		name, user, conv string
		ch               im.SettingsChange
	}{
		{"EmptyUser", "", conv, im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"ControlUser", "al\x00ice", conv, im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"LongUser", strings.Repeat("u", im.MaxIDLength+1), conv, im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"EmptyConversation", "alice", "", im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"ControlConversation", "alice", "single_\nx", im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"LongConversation", "alice", strings.Repeat("g", im.MaxConversationIDLen+1), im.SettingsChange{Pinned: boolPtr(true), At: at}},
		{"NegativeHidden", "alice", conv, im.SettingsChange{Pinned: boolPtr(true), HiddenUpTo: seqPtr(-1), At: at}},
		{"NegativeCleared", "alice", conv, im.SettingsChange{Muted: boolPtr(true), ClearedUpTo: seqPtr(-5), At: at}},
		{"NoTime", "alice", conv, im.SettingsChange{Pinned: boolPtr(true), ClearedUpTo: seqPtr(2)}},
	} {
		got, err := cs.UpdateConversationSettings(t.Context(), bad.user, bad.conv, bad.ch)
		if !errors.Is(err, im.ErrInvalidArgument) {
			t.Errorf("%s: UpdateConversationSettings(%q, %q, %s) = %+v, %v; want ErrInvalidArgument", bad.name, bad.user, bad.conv, describeChange(bad.ch), got, err)
		}
	}
	wantSettings(t, cs, "alice", []string{conv}, noSettings("alice", conv))
	wantChanged(t, cs, "alice", time.Time{})
}

func testSettingsCancelled(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const conv = "single_alice_bob"
	sendN(t, s, conv, "bob", 3, "alice", "bob")
	ctx := cancelled(t)
	if _, err := cs.UpdateConversationSettings(ctx, "alice", conv, im.SettingsChange{Pinned: boolPtr(true), ClearedUpTo: seqPtr(2), At: settingsTime(1)}); !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateConversationSettings with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := cs.ConversationSettings(ctx, "alice", []string{conv}); !errors.Is(err, context.Canceled) {
		t.Errorf("ConversationSettings with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := cs.ChangedSettings(ctx, "alice", time.Time{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ChangedSettings with a cancelled context = %v, want context.Canceled", err)
	}
	wantSettings(t, cs, "alice", []string{conv}, noSettings("alice", conv))
	wantChanged(t, cs, "alice", time.Time{})
}

// Changes of different fields of one user's settings of one conversation,
// from several goroutines (several devices, several servers), lose none of
// each other: a field written by one goroutine alone is always what it
// last wrote.
func testSettingsConcurrent(t *testing.T, s im.Store, cs im.ConversationSettingsStore) {
	const (
		conv   = "group_setc"
		rounds = 40
	)
	sendN(t, s, conv, "bob", 50, "alice", "bob")
	// Each writer owns one field: it sets it to value(i) in round i.
	writers := []struct {
		name   string
		change func(i int) im.SettingsChange
		field  func(st im.ConversationSettings) int64
		value  func(i int) int64
	}{
		{"Pinned", func(i int) im.SettingsChange { return im.SettingsChange{Pinned: boolPtr(i%2 == 0)} },
			func(st im.ConversationSettings) int64 { return b2i(st.Pinned) }, func(i int) int64 { return b2i(i%2 == 0) }},
		{"Muted", func(i int) im.SettingsChange { return im.SettingsChange{Muted: boolPtr(i%3 != 1)} },
			func(st im.ConversationSettings) int64 { return b2i(st.Muted) }, func(i int) int64 { return b2i(i%3 != 1) }},
		{"HiddenUpTo", func(i int) im.SettingsChange { return im.SettingsChange{HiddenUpTo: seqPtr(int64(i*7%50 + 1))} },
			func(st im.ConversationSettings) int64 { return st.HiddenUpTo }, func(i int) int64 { return int64(i*7%50 + 1) }},
		{"ClearedUpTo", func(i int) im.SettingsChange { return im.SettingsChange{ClearedUpTo: seqPtr(int64(i + 1))} },
			func(st im.ConversationSettings) int64 { return st.ClearedUpTo }, func(i int) int64 { return int64(i + 1) }},
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(writers))
	for n, wr := range writers {
		wg.Go(func() {
			for i := range rounds {
				if i > 0 {
					// What it wrote last round is still there, whatever
					// the others wrote since.
					got, err := cs.ConversationSettings(t.Context(), "alice", []string{conv})
					if err != nil {
						errs <- err
						return
					}
					if g, w := wr.field(got[0]), wr.value(i-1); g != w {
						errs <- fmt.Errorf("round %d: %s is %d, but it was last set to %d: another field's change overwrote it", i, wr.name, g, w)
						return
					}
				}
				ch := wr.change(i)
				ch.At = settingsTime(1 + i*len(writers) + n)
				got, err := cs.UpdateConversationSettings(t.Context(), "alice", conv, ch)
				if err != nil {
					errs <- err
					return
				}
				if g, w := wr.field(got), wr.value(i); g != w {
					errs <- fmt.Errorf("round %d: setting %s to %d returned %d", i, wr.name, w, g)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := cs.ConversationSettings(t.Context(), "alice", []string{conv})
	if err != nil {
		t.Fatal(err)
	}
	for _, wr := range writers {
		if g, w := wr.field(got[0]), wr.value(rounds-1); g != w {
			t.Errorf("in the end %s is %d, want %d, its last write", wr.name, g, w)
		}
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func testSettingsDurability(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("storetest: Harness.Reopen is not set")
	}
	s := open(t, h)
	cs := s.(im.ConversationSettingsStore)
	const conv, other = "single_alice_bob", "group_dur"
	sendN(t, s, conv, "bob", 6, "alice", "bob")
	sendN(t, s, other, "bob", 4, "alice", "bob", "carol")
	sa := im.ConversationSettings{UserID: "alice", ConversationID: conv, Pinned: true, HiddenUpTo: 6, ClearedUpTo: 4, UpdatedAt: settingsTime(2)}
	changeSettings(t, cs, "alice", conv, im.SettingsChange{Pinned: boolPtr(true), HiddenUpTo: seqPtr(3), At: settingsTime(1)},
		im.ConversationSettings{UserID: "alice", ConversationID: conv, Pinned: true, HiddenUpTo: 3, UpdatedAt: settingsTime(1)})
	changeSettings(t, cs, "alice", conv, im.SettingsChange{HiddenUpTo: seqPtr(9), ClearedUpTo: seqPtr(4), At: settingsTime(2)}, sa)
	so := im.ConversationSettings{UserID: "alice", ConversationID: other, Muted: true, UpdatedAt: settingsTime(3)}
	changeSettings(t, cs, "alice", other, im.SettingsChange{Muted: boolPtr(true), At: settingsTime(3)}, so)
	sc := im.ConversationSettings{UserID: "carol", ConversationID: other, ClearedUpTo: 4, UpdatedAt: settingsTime(4)}
	changeSettings(t, cs, "carol", other, im.SettingsChange{ClearedUpTo: seqPtr(4), At: settingsTime(4)}, sc)
	// Nothing stored.
	changeSettings(t, cs, "bob", conv, im.SettingsChange{Pinned: boolPtr(false), At: settingsTime(5)}, noSettings("bob", conv))

	s = h.Reopen(t, s)
	if s == nil {
		t.Fatal("storetest: Harness.Reopen returned nil")
	}
	cs, ok := s.(im.ConversationSettingsStore)
	if !ok {
		t.Fatal("storetest: Harness.Reopen returned a store without im.ConversationSettingsStore")
	}
	wantSettings(t, cs, "alice", []string{conv, other}, sa, so)
	wantSettings(t, cs, "carol", []string{other}, sc)
	wantSettings(t, cs, "bob", []string{conv}, noSettings("bob", conv))
	wantChanged(t, cs, "alice", time.Time{}, sa, so)
	wantChanged(t, cs, "carol", time.Time{}, sc)
	wantChanged(t, cs, "bob", time.Time{})
	// ClearedUpTo still only moves forward.
	changeSettings(t, cs, "carol", other, im.SettingsChange{ClearedUpTo: seqPtr(1), At: settingsTime(6)}, sc)
}

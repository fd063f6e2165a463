package im_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/imtest"
)

// hiddenChars are one character of each kind names must not hold, with the
// kind the error names.
var hiddenChars = []struct {
	name, char, kind string
}{
	{"right-to-left override", "\u202e", "bidirectional control"},
	{"left-to-right mark", "\u200e", "bidirectional control"},
	{"arabic letter mark", "\u061c", "bidirectional control"},
	{"first strong isolate", "\u2068", "bidirectional control"},
	{"zero-width space", "\u200b", "zero-width"},
	{"zero-width space in a word", "a\u200bb", "zero-width"},
	{"word joiner", "\u2060", "zero-width"},
	{"byte order mark", "\ufeff", "zero-width"},
	{"C1 control NEL", "\u0085", "C1 control"},
	{"C1 control CSI", "\u009b", "C1 control"},
}

// Display names keep the joiners that emoji sequences and scripts such as
// Persian need; ids refuse them.
func TestGroupNamesKeepJoiners(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	for _, name := range []string{"dev \U0001F469\u200d\U0001F4BB", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"} {
		g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: name}, []string{bob})
		require.NoError(t, err, "%+q", name)
		require.Equal(t, name, g.Name)
	}
	_, err := srv.CreateGroup(ctx, "al\u200dice", im.GroupSpec{Name: "team"}, nil)
	require.ErrorIs(t, err, im.ErrInvalidArgument, "a joiner in an id")
	require.ErrorContains(t, im.ValidateID("user id", "al\u200dice"), "zero-width")
}

func TestGroupNamesRefuseHiddenCharacters(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	g, err := srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "team"}, []string{bob})
	require.NoError(t, err)
	for _, tt := range hiddenChars {
		t.Run(tt.name, func(t *testing.T) {
			for _, spec := range []struct {
				field string
				spec  im.GroupSpec
			}{
				{"group name", im.GroupSpec{Name: "evil" + tt.char + "gnp.exe"}},
				{"faceURL", im.GroupSpec{Name: "ok", FaceURL: "https://example.com/" + tt.char + "a.png"}},
			} {
				_, err := srv.CreateGroup(ctx, alice, spec.spec, []string{bob})
				require.ErrorIs(t, err, im.ErrInvalidArgument, spec.field)
				require.ErrorContains(t, err, spec.field)
				require.ErrorContains(t, err, tt.kind)
			}
			name := "team" + tt.char
			_, err := srv.UpdateGroup(ctx, g.ID, alice, im.GroupUpdate{Name: &name})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			require.ErrorContains(t, err, "group name")

			groups, err := srv.UserGroups(ctx, alice)
			require.NoError(t, err)
			require.Len(t, groups, 1, "no group was created")
			require.Equal(t, "team", groups[0].Name, "the name did not change")
		})
	}
}

func TestIDsRefuseHiddenCharacters(t *testing.T) {
	srv := imtest.NewServer(t, imtest.Options{Config: im.Config{GroupAddPolicy: anyoneAdds}})
	ctx := testCtx(t)
	for _, tt := range hiddenChars {
		t.Run(tt.name, func(t *testing.T) {
			spoof := "ali" + tt.char + "ce"
			_, err := srv.CreateGroup(ctx, spoof, im.GroupSpec{Name: "team"}, []string{bob})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			_, err = srv.CreateGroup(ctx, alice, im.GroupSpec{Name: "team"}, []string{spoof})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			require.ErrorContains(t, im.ValidateID("user id", spoof), "user id must not contain the "+tt.kind)
		})
	}
	groups, err := srv.UserGroups(ctx, alice)
	require.NoError(t, err)
	require.Empty(t, groups, "no group was created")
}

func TestValidateNameAllowsOrdinaryText(t *testing.T) {
	for _, s := range []string{"", "team", "Équipe ✓", "فريق", "עברית", "チーム", "🚀", "tab\tis not hidden"} {
		require.NoError(t, im.ValidateName("name", s), "%q", s)
	}
}

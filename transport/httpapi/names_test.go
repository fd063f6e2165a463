package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/im/auth"
)

func TestRegisterRefusesHiddenCharactersInNickname(t *testing.T) {
	store := newTestStore(t)
	e := setup(t, store, 0, nil)
	for _, tt := range []struct{ name, char, kind string }{
		{"right-to-left override", "\u202e", "bidirectional control"},
		{"right-to-left isolate", "\u2067", "bidirectional control"},
		{"zero-width space", "\u200b", "zero-width"},
		{"byte order mark", "\ufeff", "zero-width"},
		{"C1 control", "\u0090", "control"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.post(t, "/api/auth/register", jsonBody(t, map[string]string{"username": "mallory", "password": "password", "nickname": "Ali" + tt.char + "ce"}))
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, 2, r.code, r.message)
			require.Contains(t, r.message, "nickname")
			require.Contains(t, r.message, tt.kind)
			require.Nil(t, r.data)
			_, err := store.AccountByUsername(context.Background(), "mallory")
			require.ErrorIs(t, err, im.ErrNotFound, "nothing registered")

			// The store refuses it too, for accounts made by other means.
			err = store.CreateAccount(context.Background(), auth.Account{UserID: "umallory", Username: "mallory", Nickname: "Ali" + tt.char + "ce", PasswordHash: []byte("x"), CreatedAt: time.Now()})
			require.ErrorIs(t, err, im.ErrInvalidArgument)
			_, err = store.AccountByUsername(context.Background(), "mallory")
			require.ErrorIs(t, err, im.ErrNotFound, "nothing stored")
		})
	}
}

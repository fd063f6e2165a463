// Package httpapi is imserver's REST/JSON API: the HTTP calls IM-iOS-SDK
// makes besides its socket (register, login, and in later versions users,
// groups, friends and files), plus a health check for load balancers.
//
// NewHandler returns an http.Handler to serve on its own port (8080 in the
// standalone binary) or to mount in a host's mux.
//
// # Envelope
//
// Every answer is a JSON object {"code": int, "message": string, "data": …}
// with Content-Type application/json, the shape IM-iOS-SDK decodes. code 0
// means success; message is always a string; data is absent when there is
// nothing to return, never {}. API errors are sent with HTTP status 200,
// because the SDK treats any other status as a transport failure and never
// reads the code; only the cases below that no SDK call produces use other
// statuses.
//
// Codes (stable; the low ones are the socket protocol's ErrorCode values):
//
//	code  meaning                                    HTTP status
//	0     ok                                         200
//	1     internal error (details are logged only)   200
//	1     unhealthy (GET /health)                    503
//	2     invalid parameter: bad JSON, missing or    200
//	      malformed fields, body over MaxBodyBytes
//	100   authentication failed: wrong username or   200
//	      password, unknown user, disabled account
//	      (deliberately one answer for all)
//	101   token expired (routes taking a token)      200
//	102   permission denied                          200
//	201   too many failed logins; try again later    200
//	404   no such route                              404
//	405   method not allowed (Allow header set)      405
//	1001  username is taken                          200
//
// # Routes
//
//	POST /api/auth/register  {"username","password","nickname"}
//	                         → data {"userID","username","nickname"}
//	POST /api/auth/login     {"username","password","platform"}
//	                         → data {"token","userID","expiresAt"}
//	GET  /health             → {"code":0,"message":"ok"}
//	GET  /metrics            → the im.Server's Stats, Prometheus text format
//
// expiresAt is in Unix milliseconds. Request bodies are JSON whatever their
// Content-Type says (curl users often send none); unknown fields are
// ignored, so clients may send more than a call needs. The register and login
// routes exist only when Options.Accounts is set, /metrics only when
// Options.Stats is. Register refuses usernames,
// passwords and nicknames that break the rules of im/auth; login is rate
// limited per username there.
//
// # Security
//
// Passwords and tokens are never logged: request bodies are not logged at
// all. Responses carrying a token are marked Cache-Control: no-store.
//
// # Concurrency
//
// The handler is safe for concurrent use; it holds no state of its own
// beyond Options.
package httpapi

// Package httpapi is imserver's REST/JSON API: the HTTP calls IM-iOS-SDK
// makes besides its socket (register, login and groups, and in later
// versions users, friends and files), plus liveness and readiness checks
// for load balancers and orchestrators.
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
// statuses, and a missing or refused bearer token, which fails the SDK's
// call whatever the status, and which proxies, browsers and monitoring
// should see as the 401 it is (with WWW-Authenticate: Bearer).
//
// Codes (stable; the low ones are the socket protocol's ErrorCode values):
//
//	code  meaning                                    HTTP status
//	0     ok                                         200
//	1     internal error (details are logged only)   200
//	1     not ready (GET /readyz, /health)           503
//	2     invalid parameter: bad JSON, missing or    200
//	      malformed fields, body over MaxBodyBytes,
//	      a group's member limit
//	100   authentication failed at login: wrong      200
//	      username or password, unknown user,
//	      disabled account (deliberately one answer
//	      for all)
//	100   a missing, malformed or refused bearer     401
//	      token (message "token revoked", "logged
//	      out", "account disabled" or "unknown
//	      account" when im/auth's Guard refused it)
//	100   no or wrong metrics token (GET /metrics)   401
//	101   token expired (routes taking a token)      401
//	102   permission denied: not a member of the     200
//	      group, or not of the rank the call needs
//	103   user does not exist (a group member, when  200
//	      the im.Server has Config.Users)
//	201   too many attempts; try again later         200
//	      (Retry-After header: seconds to wait)
//	202   group does not exist                       200
//	404   no such route                              404
//	405   method not allowed (Allow header set)      405
//	415   body not sent as application/json          415
//	1001  username is taken                          200
//	1201  join request stored, waiting for an admin  200
//	      (data: the group; see the join route)
//
// # Routes
//
//	POST /api/auth/register  {"username","password","nickname"}
//	                         → data {"userID","username","nickname"}
//	POST /api/auth/login     {"username","password","platform"}
//	                         → data {"token","userID","expiresAt"}
//	GET  /livez              → {"code":0,"message":"ok"} whenever the
//	                           process answers (a liveness probe)
//	GET  /readyz             → {"code":0,"message":"ok"}, or 503 with
//	                           {"code":1,"message":"storage full"} (or
//	                           "starting", "storage read-only", "storage
//	                           unavailable", "shutting down", "unhealthy"),
//	                           from Options.Ready and Options.Health
//	GET  /health             → the same as /readyz, its first name
//	                           (these three answer HEAD too)
//	GET  /metrics            → Options.MetricsHandler's answer, or the
//	                           im.Server's Stats in the Prometheus text
//	                           format, for "Authorization: Bearer
//	                           <MetricsToken>"
//
// expiresAt is in Unix milliseconds. A request body must be JSON sent as
// Content-Type application/json (a charset parameter is allowed); any other
// type is refused with HTTP 415 and code 415, so that a page on another
// site cannot submit a form or text/plain body through a visitor's browser.
// Calls without parameters may send no body and no Content-Type. Unknown
// fields are ignored, so clients may send more than a call needs. The
// register and login routes exist only when Options.Accounts is set
// (*auth.Accounts, or any implementation of the Accounts interface),
// /metrics only when Options.MetricsToken and Options.MetricsHandler (or
// Options.Stats) are; without a token, serve package transport/metrics'
// handler (or NewMetricsHandler) on a private listener. Register refuses
// usernames, passwords and nicknames that break the rules of im/auth. Both
// are limited by im/auth per client address and subnet, and login also per
// username and address (see its package documentation); the client address
// is the connection's peer (Request.RemoteAddr), never a header such as
// X-Forwarded-For, which any client can set. Behind a reverse proxy every
// client is the proxy, so the proxy must limit per client itself.
//
// No CORS header is sent unless Options.AllowedOrigins names the origin of
// the request, so browsers keep other sites' pages from reading answers or
// sending JSON; apps outside a browser (IM-iOS-SDK, curl) are not affected.
//
// # Group routes
//
// Served when Options.Server is set, each for the user of the header
// "Authorization: Bearer <token>" (the token login returns, or whatever
// the Server's Authenticator accepts); the rules of who may do what are
// those of the im.Server's group methods. The first eight are
// IM-iOS-SDK's; the SDK sends no body for calls without parameters, and a
// JSON body on GET, so both are accepted.
//
//	POST /api/group/create       {"groupName","faceURL","introduction",
//	                             "memberUserIDs"} → data group
//	GET  /api/group/{id}         → data group (members only, or anyone
//	                             for an open group; otherwise 202)
//	POST /api/group/{id}/join    → data group (open groups only)
//	POST /api/group/{id}/leave   → no data (the owner cannot leave)
//	POST /api/group/{id}/dismiss → no data (the owner only)
//	POST /api/group/{id}/invite  {"userIDs"} → no data
//	POST /api/group/{id}/kick    {"userIDs"} → no data
//	POST /api/group/update       {"groupID", and any of "groupName",
//	                             "faceURL","introduction","notification"}
//	                             → data group
//
// Our extensions:
//
//	GET  /api/group/joined       → data [group] (the caller's, oldest first)
//	GET  /api/group/{id}/members → data [{"userID","role","joinTime"}]
//	                             (members only; owner, admins, members)
//	POST /api/group/{id}/role    {"userID","role"} → no data (the owner
//	                             only; role "admin" or "member", or
//	                             "owner" to hand the group over and
//	                             become an admin)
//	POST /api/group/{id}/admin   {"userID","admin":bool} → no data (the
//	                             owner only)
//	POST /api/group/{id}/mute    {"muteAll":bool} → no data (admins)
//	POST /api/group/{id}/mute-member {"userID","until"} (Unix ms, 0
//	                             unmutes) or {"userID","seconds"} → no
//	                             data (a member of higher rank)
//	GET  /api/group/{id}/requests → data [{"groupID","userID","message",
//	                             "createTime"}] (admins)
//	POST /api/group/{id}/requests/approve {"userID"} → no data (admins)
//	POST /api/group/{id}/requests/reject  {"userID"} → no data (admins)
//
// join takes an optional {"message"}; a group with joinPolicy 2 stores a
// request and answers code 1201 with the group as data, not 0, because
// IM-iOS-SDK stores a group answered with 0 as one the user belongs to.
// joined and members page by id with cursor and limit (query string or
// body; limit 1 to 200, 50 by default): data is then {"groups" or
// "members", "nextCursor"}, nextCursor "" on the last page; without them
// the answers keep their unpaged shape.
//
// and create and update also take "notification" (create), "extra" and
// "joinPolicy" (0 open: anyone joins, any member invites; 1 invite-only:
// admins and the owner add members) and "history" (0, the default when
// left out or null: a new member reads the group's messages from her
// joining on; 1: every member reads the whole history). create without
// "joinPolicy" (or with null), as the SDK sends it, makes an invite-only
// group; an open one only when asked with "joinPolicy":0. In update, a
// field left out or null stays as it is. Group ids are 32 hex characters,
// 128 random bits. To a user who is not a member, an invite-only group
// does not exist: its info, and every other call on it (members, join,
// leave, invite, kick, role, update, dismiss), answers 202 as an unknown
// id does. Adding others (create's members, invite) follows
// im.Config.GroupAddPolicy and GroupAddsPerMinute: a refused user answers
// 102, too many a minute 201, and either adds nobody. A group is
// IM-iOS-SDK's IMGroup plus joinPolicy and history:
//
//	{"groupID","groupName","faceURL","ownerUserID","memberCount",
//	 "introduction","notification","extra","createTime","updateTime",
//	 "status","joinPolicy","history"}
//
// with createTime, updateTime and joinTime in Unix milliseconds, status
// always 0 (a dismissed group answers 202), and role one of "owner",
// "admin", "member". Lists are [] when empty, never null. invite and kick
// want at least one valid user id; members already in (invite) or not in
// (kick) are skipped. Every change is also told to the group's members as
// a notification message in the conversation group_<id> (see
// im.GroupNotice). Answers of these routes are marked Cache-Control:
// no-store.
//
// # Conversation routes
//
// Our extensions, served with the group routes and for the user of the
// bearer token as they are: her conversation list and her own settings of
// a conversation (im.Server.Conversations and UpdateConversationSettings;
// docs/PROTOCOL.md explains the list, its order and its cursors).
//
//	POST /api/conversation/list      {"limit","cursor","since"}, all
//	                                 optional (no body is the first page
//	                                 of 50) → data {"conversations",
//	                                 "nextCursor","version","readState"}
//	POST /api/conversation/settings  {"conversationID", and any of
//	                                 "pinned","muted","hidden",
//	                                 "clearUpTo","clearAll"} → data
//	                                 {"conversationID","pinned","muted",
//	                                 "hiddenUpTo","clearedUpTo","updatedAt"}
//
// A listed conversation is {"conversationID","conversationType",
// "lastMessage","maxSeq","readSeq","unread","mentioned","pinned","muted",
// "hidden","clearedUpTo","updatedAt"}, pinned ones first, then the most
// recently updated; lastMessage is null when there is none to show (an
// empty or cleared conversation), else the socket protocol's MessageInfo
// in camelCase ({"serverMsgID","clientMsgID","conversationID",
// "conversationType","senderID","receiverID","groupID","seq",
// "messageType","content","extra","attachedInfo","sendTime","serverTime",
// "isRevoked","revokedBy","revokedTime"}) with content in base64. limit
// is 50 when left out or 0, at most 200; nextCursor, empty on the last
// page, is sent back as cursor for the next; version, sent back later as
// since, lists only what changed after it, hidden conversations included
// (with "hidden":true). readState false means the server keeps no read
// positions, and readSeq, unread and mentioned are then 0. Times are Unix
// milliseconds. In settings, "hidden":true hides the conversation up to
// its newest message (the next one shows it again) and false shows it;
// clearUpTo clears the caller's history up to a seq, clearAll up to the
// newest message, for her only: both only move forward, and not together.
// A body with no change answers the settings as they are. A conversation
// the caller is not in answers 102, or 202 for an invite-only group, as
// an unknown group does; a server whose store keeps no settings answers 1
// "not supported by this server".
//
// # Friend routes
//
// Served with the group routes, for the user of the bearer token
// (im.Server.RequestFriend and the rest; docs/PROTOCOL.md section 21). The
// first seven are IM-iOS-SDK's:
//
//	POST /api/friend/add      {"userID","message"} → no data (asking one
//	                          who asked you makes you friends)
//	POST /api/friend/accept   {"userID"} → data friend
//	POST /api/friend/reject   {"userID"} → no data
//	POST /api/friend/delete   {"userID"} → no data
//	POST /api/friend/remark   {"userID","remark"} → data friend
//	GET  /api/friend/list     → data [friend], by friendUserID
//	GET  /api/friend/check    ?userID= (or a JSON body) → data true/false
//
// Our extensions:
//
//	GET  /api/friend/requests → data {"incoming":[request],
//	                          "outgoing":[request]}, oldest first
//	POST /api/friend/cancel   {"userID"} → no data
//	POST /api/friend/block    {"userID"} → no data
//	POST /api/friend/unblock  {"userID"} → no data
//	GET  /api/friend/blocks   → data [{"blockedUserID","createTime"}]
//
// A friend is IM-iOS-SDK's IMFriend, {"friendUserID","ownerUserID",
// "remark","createTime","addSource","operatorUserID","extra"}, with
// addSource 0 and operatorUserID and extra empty; a request is
// {"fromUserID","toUserID","message","createTime"}; times are Unix
// milliseconds, and lists [] when empty. Errors: 2 for a missing or bad
// userID, oneself, a message over 256 or a remark over 64 characters or
// holding control characters, and more than 200 requests waiting for an
// answer; 103 for a user who does not exist; 102 across a block; 201 past
// the friend request rate; 202 for a request, or a friendship, that is not
// there; 1 "not supported by this server" when the store keeps no friends.
//
// # User and account routes
//
// Served with the group routes, for the user of the bearer token, when the
// im.Server's Config.Users keeps profiles (im.UserProfiles, which
// *auth.Accounts is); the account routes also need Options.Accounts to be
// an AccountLifecycle. docs/PROTOCOL.md, section 22, has the details.
//
//	GET  /api/user/info/{id}    → data user (103 if unknown)
//	POST /api/user/info/batch   {"userIDs"} → data [user] (at most 100 ids)
//	POST /api/user/update       {"userID","nickname","avatar","signature",
//	                            "gender","birth"} → data user (userID must
//	                            be the caller's, else 102; a field left out
//	                            stays)
//	GET  /api/user/search       {"keyword"} or ?keyword= → data [user]
//	POST /api/auth/logout       → no data (this token is revoked and its
//	                            sockets kicked)
//	POST /api/auth/password     {"oldPassword","newPassword"} → data
//	                            {"token","userID","expiresAt"} (every
//	                            socket of the user is kicked)
//	POST /api/auth/delete       {"password"} → no data
//
// A user is {"userID","nickname","avatar","phone","email","gender","birth",
// "signature","extra","createTime","updateTime","username","deleted"}. A
// wrong password answers 102 "wrong password".
//
// # File routes
//
// Served when Options.Files is set (a *files.Service); docs/PROTOCOL.md,
// section 24, has the details. Their answers are not in the envelope:
// IM-iOS-SDK's IMFileManager reads a bare object.
//
//	POST /upload              raw bytes, any Content-Type, token optional
//	                          → 200 {"url","file_id","size","content_type"};
//	                          errors {"error"} with 400 (empty), 401 (a
//	                          refused token), 413 (over Files' MaxSize,
//	                          with or without Content-Length), 429 (over
//	                          FileLimits, Retry-After), 507 (disk full)
//	GET  /files/{id}{ext}     the file (HEAD too): Range/206/416,
//	                          If-None-Match/304, ETag, Last-Modified;
//	                          404 for anything but an existing file's
//	                          exact name
//	GET  /files/{sig}/{id}{ext}  the same with Options.SignedURLs, which
//	                          then is the only form served
//
// Downloads carry X-Content-Type-Options: nosniff and
// Content-Security-Policy: sandbox, and active content (HTML, SVG, XML,
// JavaScript, any text but plain text) Content-Disposition: attachment.
// Anonymous uploads count against the client's IP address (an IPv6 /64),
// the others against their user.
//
// # Admin routes
//
// Served when Options.AdminToken is set (at least MinAdminTokenLen bytes)
// to requests with "Authorization: Bearer <AdminToken>", compared in
// constant time; anything else, a user's token included, gets HTTP 401
// with code 100. Without a token they answer 404. Every call is logged
// with its route, target and outcome ("admin: kicked user u1 (2
// sessions)") and the caller's address: at info, except the reads a
// dashboard repeats (sessions, stats, history), which are logged at debug;
// refused ones at warn. Answers are the envelope, marked Cache-Control:
// no-store. docs/ADMIN.md has the shapes.
//
//	GET  /admin/api/sessions   ?limit=1..1000 (default 100)&after=<sessionID>:
//	                           {"sessions":[session],"next"} (next: the after
//	                           of the next page, "" on the last)
//	POST /admin/api/kick       {"userID"} or {"sessionID"}: {"kicked":n}
//	POST /admin/api/message    {"userID","content","type"?}: a system message
//	                           (im.Server.SendSystemMessage; type 0 is text):
//	                           {"serverMsgID","conversationID","seq"}
//	POST /admin/api/broadcast  {"content","type"?} as a system message to every
//	                           online user: {"users","failed"}; one per
//	                           AdminBroadcastInterval, HTTP 429 (code 201,
//	                           Retry-After) within it
//	GET  /admin/api/user/{id}  {"user"?,"sessions":[session]}; code 103 for
//	                           no such user
//	GET  /admin/api/group/{id} {"group","members":[member]}, whoever may see it
//	GET  /admin/api/stats      im.Stats, by its Go field names (durations in
//	                           nanoseconds)
//	GET  /admin/api/history    ?since=<Unix ms>: {"interval","points":[point]},
//	                           the figures sampled every AdminHistoryInterval,
//	                           the last AdminHistoryLen of them, oldest first
//
// A session is {"sessionID","userID","platform","transport","address",
// "since"} (since: Unix milliseconds).
//
// The same token also opens the dashboard, a web page served at GET /admin
// (and /admin/) from files embedded in the binary, which reads and calls
// the routes above from the browser. The page and its script and style
// load without the token, which the page asks for; they are served with a
// Content-Security-Policy that allows only their own script and style
// and no framing. The history is sampled by a goroutine that
// NewHandler starts and the Server stops: it registers with
// Options.Server (im.Server.RegisterTransport), whose Shutdown and Close
// end it.
//
// # Security
//
// Passwords and tokens are never logged: request bodies are not logged at
// all. Responses carrying a token are marked Cache-Control: no-store.
//
// # Concurrency
//
// The handler is safe for concurrent use; its only state of its own
// beyond Options is the upload quotas of recent clients, the time of
// the last admin broadcast and the admin history.
package httpapi

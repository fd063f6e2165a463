package imv1

import "google.golang.org/protobuf/proto"

// NewBody returns a new, empty message of the type that frames of command
// cmd carry, or nil for commands whose frames have no body (or that the
// protocol does not define).
func NewBody(cmd CommandType) proto.Message {
	switch cmd {
	case CommandType_CMD_CONNECT_REQ:
		return new(ConnectRequest)
	case CommandType_CMD_CONNECT_RSP:
		return new(ConnectResponse)
	case CommandType_CMD_HEARTBEAT_REQ:
		return new(HeartbeatRequest)
	case CommandType_CMD_HEARTBEAT_RSP:
		return new(HeartbeatResponse)
	case CommandType_CMD_AUTH_REQ, CommandType_CMD_REAUTH_REQ:
		return new(AuthRequest)
	case CommandType_CMD_AUTH_RSP, CommandType_CMD_REAUTH_RSP:
		return new(AuthResponse)
	case CommandType_CMD_KICK_OUT:
		return new(KickOutNotification)
	case CommandType_CMD_SEND_MSG_REQ:
		return new(SendMessageRequest)
	case CommandType_CMD_SEND_MSG_RSP:
		return new(SendMessageResponse)
	case CommandType_CMD_PUSH_MSG:
		return new(PushMessage)
	case CommandType_CMD_MSG_ACK:
		return new(MessageAck)
	case CommandType_CMD_BATCH_MSG:
		return new(BatchMessages)
	case CommandType_CMD_REVOKE_MSG_REQ:
		return new(RevokeMessageRequest)
	case CommandType_CMD_REVOKE_MSG_RSP:
		return new(RevokeMessageResponse)
	case CommandType_CMD_REVOKE_MSG_PUSH:
		return new(RevokeMessagePush)
	case CommandType_CMD_BATCH_SYNC_REQ:
		return new(BatchSyncRequest)
	case CommandType_CMD_BATCH_SYNC_RSP:
		return new(BatchSyncResponse)
	case CommandType_CMD_SYNC_RANGE_REQ:
		return new(SyncRangeRequest)
	case CommandType_CMD_SYNC_RANGE_RSP:
		return new(SyncRangeResponse)
	case CommandType_CMD_READ_RECEIPT_REQ:
		return new(ReadReceiptRequest)
	case CommandType_CMD_READ_RECEIPT_RSP:
		return new(ReadReceiptResponse)
	case CommandType_CMD_READ_RECEIPT_PUSH:
		return new(ReadReceiptPush)
	case CommandType_CMD_TYPING_STATUS_REQ:
		return new(TypingStatusRequest)
	case CommandType_CMD_TYPING_STATUS_PUSH:
		return new(TypingStatusPush)
	case CommandType_CMD_ONLINE_STATUS_REQ:
		return new(OnlineStatusRequest)
	case CommandType_CMD_ONLINE_STATUS_RSP:
		return new(OnlineStatusResponse)
	case CommandType_CMD_STATUS_CHANGE_PUSH:
		return new(StatusChangePush)
	case CommandType_CMD_READ_STATE_REQ:
		return new(ReadStateRequest)
	case CommandType_CMD_READ_STATE_RSP:
		return new(ReadStateResponse)
	case CommandType_CMD_DELIVERY_RECEIPT_PUSH:
		return new(DeliveryReceiptPush)
	case CommandType_CMD_READ_BY_REQ:
		return new(ReadByRequest)
	case CommandType_CMD_READ_BY_RSP:
		return new(ReadByResponse)
	case CommandType_CMD_CONVERSATION_LIST_REQ:
		return new(ConversationListRequest)
	case CommandType_CMD_CONVERSATION_LIST_RSP:
		return new(ConversationListResponse)
	case CommandType_CMD_CONVERSATION_SETTINGS_REQ:
		return new(ConversationSettingsRequest)
	case CommandType_CMD_CONVERSATION_SETTINGS_RSP:
		return new(ConversationSettingsResponse)
	case CommandType_CMD_CONVERSATION_CHANGED_PUSH:
		return new(ConversationChangedPush)
	case CommandType_CMD_FRIEND_SUBSCRIBE_REQ:
		return new(FriendSubscribeRequest)
	case CommandType_CMD_FRIEND_SUBSCRIBE_RSP:
		return new(FriendSubscribeResponse)
	case CommandType_CMD_FRIEND_EVENT_PUSH:
		return new(FriendEventPush)
	case CommandType_CMD_GROUP_JOIN_REQUEST_PUSH:
		return new(GroupJoinRequestPush)
	case CommandType_CMD_GROUP_JOIN_REJECTED_PUSH:
		return new(GroupJoinRejectedPush)
	case CommandType_CMD_GROUP_SUBSCRIBE_REQ:
		return new(GroupSubscribeRequest)
	case CommandType_CMD_GROUP_SUBSCRIBE_RSP:
		return new(GroupSubscribeResponse)
	case CommandType_CMD_ERROR_RSP:
		return new(ErrorResponse)
	}
	return nil
}

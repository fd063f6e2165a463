package imv1

//go:generate go run -C internal/protogen . -dir ../.. imv1.proto

# Shortcuts for the commands the README gives; nothing here that the README
# does not explain. cmd/imserver/packaging_test.go checks the go commands
# against the README and the flags against the binary.

.PHONY: build run test proto docker-build docker-run

# Flags for make run, e.g. make run ARGS='-store postgres -dsn postgres://…'
ARGS ?=

build:
	go build -o imserver ./cmd/imserver

run:
	go run ./cmd/imserver $(ARGS)

test:
	go test ./...

proto:
	go generate ./im/imv1

docker-build:
	docker build -t imserver .

# imserver and PostgreSQL; needs IM_JWT_SECRET in the environment or .env.
docker-run:
	docker compose up --build

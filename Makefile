# The two commands of the README:
#   make demo   installs what is missing, builds, pretrains CorInfoMax on
#               Fashion-MNIST, evaluates it against two baselines, reports.
#   make test   runs the test suite.
# /usr/local/go/bin first, so that an older Go earlier on PATH does not win.
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: demo test build deps vet bench clean

demo: build
	./bin/corinfomax demo

test: deps
	$(GO) vet ./...
	$(GO) test ./...

build: deps
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/corinfomax ./cmd/corinfomax

deps:
	@./scripts/install-deps.sh

bench: build
	./bin/corinfomax bench step --arch resnet18 --width 16 --batch 128 --method supervised --json
	./bin/corinfomax bench step --arch resnet18 --width 16 --batch 128 --method corinfomax --projector 512-512-64 --json

clean:
	rm -rf bin

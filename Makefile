# Makefile mirrors CI: `make test` is what .ci/run runs.
GO ?= go
LAMBDAS := processor projector publisher api

.PHONY: run test build lint lambdas bench clean

run: ## run the ledger: API and every worker on ./data
	$(GO) run ./cmd/ledger serve

test: ## every test, as CI runs it
	bash scripts/test.sh

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o bin/ledger ./cmd/ledger

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

lambdas: ## linux/arm64 bootstrap zips for Lambda (provided.al2023)
	@mkdir -p build/lambdas
	@for f in $(LAMBDAS); do \
	  rm -rf build/lambdas/$$f && mkdir -p build/lambdas/$$f && \
	  GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -tags lambda.norpc -ldflags "-s -w" \
	    -o build/lambdas/$$f/bootstrap ./aws/lambdas/$$f && \
	  (cd build/lambdas/$$f && rm -f ../$$f.zip && python3 -c "import zipfile,sys; z=zipfile.ZipFile('../$$f.zip','w',zipfile.ZIP_DEFLATED); i=zipfile.ZipInfo('bootstrap'); i.external_attr=0o755<<16; i.compress_type=zipfile.ZIP_DEFLATED; z.writestr(i, open('bootstrap','rb').read()); z.close()") && \
	  ls -l build/lambdas/$$f.zip; \
	done

clean:
	rm -rf bin build

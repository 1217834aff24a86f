# Entry points; each installs what it needs (scripts/install-deps.sh) on a fresh Debian 12.
.PHONY: run test build unit demo bed-up bed-down clean bench bench-micro

run: build            ## run the server with configs/cdc.yaml (SQLite store in ./data)
	./build/milvus-cdc --config configs/cdc.yaml

test:                 ## every test: unit + end-to-end on the local test bed
	bash scripts/test-all.sh

build:
	bash scripts/build.sh

unit: build
	ctest --test-dir build --output-on-failure -j2

demo: build           ## bed + server + a task + sample rows
	bash scripts/demo.sh

bench: build          ## replication benchmark on the local test bed (docs/performance.md)
	bash bench/run.sh

bench-micro:          ## Google Benchmark of the insert hot path, no bed
	bash bench/micro.sh

bed-up:
	bash scripts/testbed.sh up

bed-down:
	bash scripts/testbed.sh down

clean:
	rm -rf build build-*

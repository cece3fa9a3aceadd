# archtrace on the python:3.11-slim image (a shared-libpython CPython 3.11).
# Debian's own python3.11 (the static build shape) is installed as well, so
# both shapes are in the image.  The package list is the one `make deps`
# installs (tools/debian-packages.txt); tests/test_dockerfile.c checks that
# every package there is named here.
FROM python:3.11-slim

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential pkg-config clang llvm libbpf-dev bpftool \
      libelf-dev libdw-dev libunwind-dev zlib1g-dev \
      protobuf-c-compiler libprotobuf-c-dev libcurl4-openssl-dev \
      libcriterion-dev libclang-rt-14-dev tmux valgrind procps \
      prometheus chromium \
      python3.11 python3.11-dev python3.11-venv \
      redis-server \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/archtrace

# The labs' PyPI packages, at the versions the labs target.
COPY labs/requirements.txt labs/requirements.txt
RUN pip install --no-cache-dir -r labs/requirements.txt

COPY . .
RUN make all && make install

# The demo: archtrace on lab 08 (GIL vs multiprocessing).
WORKDIR /opt/archtrace/labs
CMD ["archtrace", "python3", "lab08.py"]

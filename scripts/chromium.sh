# Helpers for scripts/test: make sure headless Chromium is here for tests/web_browser.rs.
# shellcheck shell=bash

chromium_present() {
  command -v chromium >/dev/null 2>&1
}

install_chromium_package() {
  echo "== no chromium found; installing Debian's chromium package"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# Installs Chromium when it is missing, unless FIREBREAK_SKIP_BROWSER=1 says the browser
# test is to be skipped. A failed install is not fatal here: the browser test then fails
# with a sentence saying what is missing, so the suite cannot pass without it.
ensure_chromium() {
  if [ "${FIREBREAK_SKIP_BROWSER:-}" = 1 ]; then
    echo "== FIREBREAK_SKIP_BROWSER=1: the browser test will be skipped"
    return
  fi
  if ! chromium_present; then
    install_chromium_package || echo "== installing chromium failed; the browser test will fail" >&2
  fi
  if chromium_present; then
    echo "== Chromium for the browser test: $(chromium --version 2>/dev/null)"
  fi
}

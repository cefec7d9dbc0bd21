"""The small programs and configuration files baked into the images.

They are shell scripts for busybox's ash because busybox-static is the only
runtime the images share; each one is kept here as text so a reader sees the
whole behaviour of an image in one place.

* /pause — Kubernetes' pause container holds a pod's namespaces, exits 0 on
  SIGTERM or SIGINT and reaps the zombies that land on it as PID 1. Debian
  ships no pause binary, so the shell does it: a trap exits 0, and `wait`
  (which waits for any child) reaps orphans whenever one exits.
* /testserver — an agnhost-like test server. busybox httpd runs CGI only
  under /cgi-bin/ and cannot route `/healthz` or `/echo` to a script, so
  `nc -ll -e` accepts each connection and forks the handler, which reads the
  request line and headers and answers with HTTP/1.1 and Connection: close.
  Subcommands follow agnhost's names: netexec (the default: `/` and
  /hostname give the hostname, /echo?msg= echoes, /healthz and /readyz are
  200 or 500 when /tmp/unready exists or it was started with
  --fail-readiness or FAIL_READINESS=1, /exit?code=N ends the container with
  exit code N), liveness (/healthz is 200 for 10 seconds, then 500, as in
  the Kubernetes liveness-probe tutorial), serve-hostname (every path gives
  the hostname, port 9376) and hello (`{"message":"Hello"}` on port 80, for
  the docs' hello-go-gke backend). The port is --http-port/--port, else
  $PORT, else the subcommand's default.
* nginx — Docker Hub's layout: /etc/nginx/nginx.conf including conf.d, a
  default server on port 80 serving /usr/share/nginx/html, workers as user
  nginx, logs as symlinks to the container's stdout and stderr.
"""

from __future__ import annotations

PAUSE = """#!/bin/sh
# kubelab pause: hold the pod's namespaces until SIGTERM or SIGINT, then exit 0.
# `wait` reaps any child that exits, orphans re-parented to PID 1 included.
trap 'kill $! 2>/dev/null; exit 0' TERM INT
while :; do
    sleep 3600 &
    wait $!
done
"""

TESTSERVER = r"""#!/bin/sh
# kubelab test server (agnhost-like): testserver [netexec|liveness|serve-hostname|hello|pause] [flags]
mode=${1:-netexec}
[ $# -gt 0 ] && shift
case $mode in
    netexec|liveness) port=8080 ;;
    serve-hostname) port=9376 ;;
    hello) port=80 ;;
    pause) exec /pause ;;
    -h|--help|help)
        echo "usage: $0 [netexec|liveness|serve-hostname|hello|pause] [--http-port=N] [--fail-readiness]"
        exit 0 ;;
    *) echo "testserver: unknown subcommand '$mode' (netexec, liveness, serve-hostname, hello, pause)" >&2; exit 2 ;;
esac
[ -n "$PORT" ] && port=$PORT
state=/tmp/testserver
mkdir -p $state
rm -f $state/exit-code
for arg in "$@"; do
    case $arg in
        --http-port=*|--port=*) port=${arg#*=} ;;
        --fail-readiness) touch /tmp/unready ;;
        *) echo "testserver: unknown flag '$arg'" >&2; exit 2 ;;
    esac
done
case $FAIL_READINESS in 1|true|yes) touch /tmp/unready ;; esac
date +%s > $state/started
echo "$mode" > $state/mode
echo $$ > $state/pid
trap 'kill $server 2>/dev/null; exit $(cat $state/exit-code 2>/dev/null || echo 0)' USR1
trap 'kill $server 2>/dev/null; exit 0' TERM INT
echo "testserver: $mode listening on port $port" >&2
nc -ll -p "$port" -e /usr/lib/testserver/handle &
server=$!
wait $server
"""

HANDLER = r"""#!/bin/sh
# One HTTP request on stdin/stdout (started by nc -ll -e for every connection).
set -f
state=/tmp/testserver
cr=$(printf '\r')
IFS= read -r -t 10 line || exit 0
line=${line%"$cr"}
set -- $line
method=$1 target=$2
length=0
while IFS= read -r -t 10 header; do
    header=${header%"$cr"}
    [ -z "$header" ] && break
    case $header in
        [Cc]ontent-[Ll]ength:*) length=$(echo "${header#*:}" | tr -d ' ') ;;
    esac
done
[ "$length" -gt 0 ] 2>/dev/null && head -c "$length" >/dev/null
path=${target%%\?*}
query=
case $target in *\?*) query=${target#*\?} ;; esac

param() {
    printf '%s' "$query" | tr '&' '\n' | sed -n "s/^$1=//p" | head -n 1 \
        | sed 's/+/ /g; s/%\([0-9A-Fa-f][0-9A-Fa-f]\)/\\x\1/g' | { IFS= read -r v; printf '%b' "$v"; }
}
respond() {
    length=$(printf '%s' "$3" | wc -c)
    printf 'HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$1" "$2" "$length" "$3"
    echo "testserver: $method $target -> ${1%% *}" >&2
}
ready() { [ ! -e /tmp/unready ]; }
live() {
    [ "$(cat $state/mode)" = liveness ] || return 0
    [ $(( $(date +%s) - $(cat $state/started) )) -le 10 ]
}

mode=$(cat $state/mode)
if [ "$mode" = serve-hostname ]; then
    respond "200 OK" text/plain "$(hostname)"; exit 0
fi
case $path in
    /)
        if [ "$mode" = hello ]; then respond "200 OK" application/json '{"message":"Hello"}'
        else respond "200 OK" text/plain "$(hostname)"; fi ;;
    /hostname) respond "200 OK" text/plain "$(hostname)" ;;
    /echo) respond "200 OK" text/plain "$(param msg)" ;;
    /healthz)
        if ! live; then respond "500 Internal Server Error" text/plain "error: started more than 10 seconds ago"
        elif ! ready; then respond "500 Internal Server Error" text/plain "not ready: /tmp/unready exists"
        else respond "200 OK" text/plain ok; fi ;;
    /readyz)
        if ready; then respond "200 OK" text/plain ok
        else respond "500 Internal Server Error" text/plain "not ready: /tmp/unready exists"; fi ;;
    /exit)
        code=$(param code)
        case $code in ''|*[!0-9]*) code=256 ;; esac
        if [ "$code" -gt 255 ]; then
            respond "400 Bad Request" text/plain "exit: code must be 0-255, got '$(param code)'"
            exit 0
        fi
        echo "$code" > $state/exit-code
        respond "200 OK" text/plain "exiting with code $code"
        exec >&- <&-
        sleep 0.2
        kill -USR1 "$(cat $state/pid)" ;;
    *) respond "404 Not Found" text/plain "404: $path not found" ;;
esac
"""

NGINX_CONF = """user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
"""

NGINX_DEFAULT_SERVER = """server {
    listen       80;
    listen  [::]:80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html index.htm;
    }

    error_page   500 502 503 504  /50x.html;
    location = /50x.html {
        root   /usr/share/nginx/html;
    }
}
"""

NGINX_INDEX = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and
working. This image was built by kubelab from Debian's nginx package.</p>
</body>
</html>
"""

NGINX_50X = """<!DOCTYPE html>
<html>
<head><title>Error</title></head>
<body><h1>An error occurred.</h1></body>
</html>
"""

USER_DATABASE = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nginx:x:101:101:nginx:/nonexistent:/bin/false
redis:x:999:999:redis:/data:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

GROUP_DATABASE = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
tty:x:5:
www-data:x:33:
nginx:x:101:
redis:x:999:
nogroup:x:65534:
"""

NSSWITCH = """passwd:         files
group:          files
shadow:         files
hosts:          files dns
networks:       files
protocols:      files
services:       files
"""

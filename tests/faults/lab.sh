#!/usr/bin/env bash
# Hosts for fault tests: N network namespaces PREFIX-h1..hN, each with its own address
# 10.77.0.<i>/24 on eth0, joined by a bridge in PREFIX-sw. Faults are made inside the hosts
# (iptables, tc), so nothing outside the namespaces this script made is touched.
#   lab.sh up PREFIX N                   build the hosts (removing leftovers of PREFIX first)
#   lab.sh down PREFIX N                 remove them, with everything in them
#   lab.sh partition PREFIX "1 2 3" "4 5"  the two groups lose each other (packets dropped, silently)
#   lab.sh heal PREFIX N                 every filter and shaper removed
#   lab.sh loss PREFIX N PERCENT         each host drops PERCENT % of the packets it receives
#   lab.sh rate PREFIX N RATE            each host sends at most RATE (tc tbf, such as 10mbit)
#   lab.sh delay PREFIX N MS RELAY       each TCP connection between hosts is delayed MS each way:
#                                        the host that opens it sends it through RELAY (the
#                                        delay-relay binary of crates/testing), so its round trip
#                                        grows by 2 x MS
# Needs root, iproute2 and iptables.
set -euo pipefail
command=$1 prefix=$2
host() { echo "$prefix-h$1"; }
address() { echo "10.77.0.$1"; }

case $command in
  up)
    n=$3
    "$0" down "$prefix" "$n" 2>/dev/null || true
    ip netns add "$prefix-sw"
    ip -n "$prefix-sw" link add br0 type bridge
    ip -n "$prefix-sw" link set br0 up
    for i in $(seq 1 "$n"); do
      ns=$(host "$i")
      ip netns add "$ns"
      ip -n "$ns" link set lo up
      ip link add eth0 netns "$ns" type veth peer name "port$i" netns "$prefix-sw"
      ip -n "$prefix-sw" link set "port$i" master br0 up
      ip -n "$ns" addr add "$(address "$i")/24" dev eth0
      ip -n "$ns" link set eth0 up
    done
    ;;
  down)
    n=$3
    for i in $(seq 1 "$n"); do
      # Processes outlive a deleted namespace: stop what still runs in it first.
      pids=$(ip netns pids "$(host "$i")" 2>/dev/null || true)
      [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
      ip netns del "$(host "$i")" 2>/dev/null || true
    done
    ip netns del "$prefix-sw" 2>/dev/null || true
    ;;
  partition)
    read -ra left <<<"$3"
    read -ra right <<<"$4"
    cut() {
      local from=$1 to=$2
      ip netns exec "$(host "$from")" iptables -A INPUT -s "$(address "$to")" -j DROP
      ip netns exec "$(host "$from")" iptables -A OUTPUT -d "$(address "$to")" -j DROP
    }
    for a in "${left[@]}"; do for b in "${right[@]}"; do cut "$a" "$b"; cut "$b" "$a"; done; done
    ;;
  heal)
    n=$3
    for i in $(seq 1 "$n"); do
      ip netns exec "$(host "$i")" iptables -F
      ip netns exec "$(host "$i")" iptables -t nat -F
      if [ -f "/run/$(host "$i")-relay.pid" ]; then
        kill "$(cat "/run/$(host "$i")-relay.pid")" 2>/dev/null || true
        rm -f "/run/$(host "$i")-relay.pid"
      fi
      ip -n "$(host "$i")" link set eth0 up
      tc -n "$(host "$i")" qdisc del dev eth0 root 2>/dev/null || true
    done
    ;;
  loss)
    n=$3 percent=$4
    probability=$(awk -v p="$percent" 'BEGIN { printf "%.4f", p / 100 }')
    for i in $(seq 1 "$n"); do
      ip netns exec "$(host "$i")" iptables -A INPUT -i eth0 -m statistic --mode random \
        --probability "$probability" -j DROP
    done
    ;;
  rate)
    n=$3 rate=$4
    for i in $(seq 1 "$n"); do
      tc -n "$(host "$i")" qdisc replace dev eth0 root tbf rate "$rate" burst 32kbit latency 400ms
    done
    ;;
  delay)
    n=$3 ms=$4 relay=$5
    for i in $(seq 1 "$n"); do
      ns=$(host "$i")
      ip netns exec "$ns" "$relay" 4999 "$ms" 7 >/dev/null 2>&1 &
      echo $! >"/run/$ns-relay.pid"
      ip netns exec "$ns" iptables -t nat -A OUTPUT -p tcp -d 10.77.0.0/24 -m mark ! --mark 7 \
        -j REDIRECT --to-ports 4999
    done
    sleep 0.3
    ;;
  *)
    echo "unknown command $command" >&2
    exit 2
    ;;
esac

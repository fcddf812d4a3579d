#!/bin/sh
# Development certificate authority for the MQTT broker, terminals and the back office.
#
# NOT for production: the CA key sits unencrypted in DIR. Production certificates come from
# the operator's PKI; only the subject names below are the contract (docs/mqtt.md section 6).
#
#   dev-ca.sh DIR init                        CA (ca.pem, ca.key), broker certificate
#                                             (broker.pem, broker.key; CN and SAN localhost,
#                                             127.0.0.1 and any extra names in $BROKER_NAMES)
#                                             and an empty CRL (crl.pem: Mosquitto's crlfile
#                                             must exist; `kiosk-backoffice terminal revoke`
#                                             writes it from then on)
#   dev-ca.sh DIR terminal STATION TERMINAL   terminal-STATION-TERMINAL.pem/.key,
#                                             CN "STATION/TERMINAL" (the MQTT username)
#   dev-ca.sh DIR backoffice [NAME]           NAME.pem/.key (default backoffice), CN NAME
#
# Keys are ECDSA P-256; certificates are valid for DAYS (default 825) days.
set -eu

usage() {
    echo "usage: $0 DIR init | DIR terminal STATION TERMINAL | DIR backoffice [NAME]" >&2
    exit 2
}

[ $# -ge 2 ] || usage
dir=$1
what=$2
days=${DAYS:-825}
mkdir -p "$dir"
cd "$dir"

issue() {
    # issue NAME SUBJECT EXTENSIONS: a key and a certificate signed by the CA
    name=$1
    subject=$2
    extensions=$3
    [ -f ca.pem ] || { echo "$dir has no CA yet: run '$0 $dir init' first" >&2; exit 1; }
    openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" 2>/dev/null
    chmod 600 "$name.key"
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
    printf '%s\n' "$extensions" > "$name.ext"
    openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days "$days" -sha256 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
    rm -f "$name.csr" "$name.ext"
}

client_ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"

case "$what" in
init)
    [ $# -eq 2 ] || usage
    if [ ! -f ca.pem ]; then
        openssl ecparam -name prime256v1 -genkey -noout -out ca.key 2>/dev/null
        chmod 600 ca.key
        openssl req -x509 -new -key ca.key -sha256 -days "$days" \
            -subj "/O=Kiosk Dev/CN=Kiosk Dev MQTT CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem
    fi
    if [ ! -f crl.pem ]; then
        # openssl ca wants its database even for an empty list.
        : > crl-index.txt
        printf '[ca]\ndefault_ca=dev\n[dev]\ndatabase=crl-index.txt\ndefault_md=sha256\ndefault_crl_days=%s\n' \
            "$days" > crl.cnf
        openssl ca -gencrl -config crl.cnf -cert ca.pem -keyfile ca.key -out crl.pem 2>/dev/null
        rm -f crl.cnf crl-index.txt crl-index.txt.attr crl-index.txt.old
    fi
    san="DNS:localhost,IP:127.0.0.1"
    for extra in ${BROKER_NAMES:-}; do san="$san,DNS:$extra"; done
    issue broker "/O=Kiosk Dev/CN=localhost" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"
    ;;
terminal)
    [ $# -eq 4 ] || usage
    station=$3
    terminal=$4
    # The same rules as the terminal's configuration (station.institution_no, terminal_id).
    echo "$station" | grep -Eq '^[0-9]+$' || { echo "station must be digits: $station" >&2; exit 2; }
    echo "$terminal" | grep -Eq '^[A-Za-z0-9-]{1,32}$' \
        || { echo "terminal must be 1-32 letters, digits or '-': $terminal" >&2; exit 2; }
    issue "terminal-$station-$terminal" "/O=Kiosk Dev/OU=terminal/CN=$station\/$terminal" "$client_ext"
    ;;
backoffice)
    [ $# -le 3 ] || usage
    name=${3:-backoffice}
    echo "$name" | grep -Eq '^backoffice[A-Za-z0-9-]*$' \
        || { echo "back-office names start with 'backoffice': $name" >&2; exit 2; }
    issue "$name" "/O=Kiosk Dev/OU=backoffice/CN=$name" "$client_ext"
    ;;
*)
    usage
    ;;
esac

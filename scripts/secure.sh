# shellcheck shell=bash
# The secure layout of `make run-all-secure` (sourced by run-all.sh after
# lib.sh): a private CA and certificates made with openssl, the flags that
# turn TLS, authentication and ACLs on, and the admin user.
#
# data/secure/ holds:
#   ca.pem, ca.key           the private CA (keep ca.key secret)
#   server.crt, server.key   every server's certificate (127.0.0.1, localhost)
#   operator.crt/.key        an operator's client certificate of the CA: it
#                            authenticates as one of the cluster's servers
#                            (allowed everything on gRPC)
#   admin.password           the admin user's password (mode 600)

SECURE_DIR="$DATA_DIR/secure"

# secure_certificates: makes the CA and certificates unless they exist.
secure_certificates() {
  local d=$SECURE_DIR ext
  command -v openssl >/dev/null 2>&1 || die "openssl is missing; run: make deps"
  mkdir -p "$d"
  [ -f "$d/ca.pem" ] && [ -f "$d/server.crt" ] && [ -f "$d/operator.crt" ] && return 0
  log "making a private CA and certificates in $d"
  ( umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=Goulette local CA" 2>/dev/null
    for who in server operator; do
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$d/$who.key" -out "$d/$who.csr" -subj "/CN=goulette-$who" 2>/dev/null
      ext="$d/$who.ext"
      if [ "$who" = server ]; then
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' >"$ext"
      else
        printf 'extendedKeyUsage=clientAuth\n' >"$ext"
      fi
      openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 825 -out "$d/$who.crt" -extfile "$ext" 2>/dev/null
      rm -f "$d/$who.csr" "$ext"
    done ) || die "openssl could not make the certificates"
  [ -f "$d/admin.password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$d/admin.password")
}

# secure_server_args: the flags every server gets in the secure layout.
secure_server_args() {
  local d=$SECURE_DIR
  echo --tls-cert "$d/server.crt" --tls-key "$d/server.key" --tls-ca "$d/ca.pem" --tls-client-ca "$d/ca.pem" \
    --auth-required true --acl-enabled true --super-users User:admin
}

# secure_broker_args: and what brokers add (their Kafka listener).
secure_broker_args() {
  local d=$SECURE_DIR
  echo --kafka-tls-cert "$d/server.crt" --kafka-tls-key "$d/server.key" \
    --kafka-sasl-mechanisms SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
}

# secure_client_env: `goulette` as the operator (for the status polls),
# and `goulette etcd` to the embedded etcd, which serves TLS only and asks
# for a certificate of the CA (--embedded-etcd-tls).
secure_client_env() {
  export GOULETTE_TLS_CA="$SECURE_DIR/ca.pem"
  export GOULETTE_CLIENT_CERT="$SECURE_DIR/operator.crt" GOULETTE_CLIENT_KEY="$SECURE_DIR/operator.key"
  # Flags, not GOULETTE_ETCD_TLS_* variables: the servers started from this
  # shell would read those too.
  ETCD_CLIENT_URL=https://127.0.0.1:2379
  ETCD_TLS_ARGS=(--etcd-tls-ca "$SECURE_DIR/ca.pem" --etcd-tls-cert "$SECURE_DIR/operator.crt"
    --etcd-tls-key "$SECURE_DIR/operator.key")
}

# secure_admin: creates the admin user (a super user) unless it exists.
secure_admin() {
  if timeout 10 "$GOULETTE" user list 2>/dev/null | grep -q '^admin '; then return 0; fi
  GOULETTE_USER_PASSWORD=$(cat "$SECURE_DIR/admin.password") timeout 20 "$GOULETTE" user create admin >/dev/null ||
    fail_start "could not create the admin user"
  log "created the user admin (a super user); its password is in $SECURE_DIR/admin.password"
}

# print_secure: how to connect as admin.
print_secure() {
  local d=$SECURE_DIR b
  b=$(broker_kafka_address 1)
  cat <<USAGE

Secure: TLS on every listener, logins required, ACLs on (data/secure/ holds the CA and keys).
goulette, as the user admin (a super user):
  export GOULETTE_TLS_CA=$d/ca.pem GOULETTE_USER=admin GOULETTE_PASSWORD=\$(cat $d/admin.password)
  target/release/goulette topic create demo
  echo hello | target/release/goulette produce --topic demo
  target/release/goulette user create alice    # the password on standard input
  target/release/goulette acl add --principal User:alice --operation read,write --topic demo
kcat (SASL_SSL, SCRAM-SHA-512):
  kcat -b $b -X security.protocol=sasl_ssl -X ssl.ca.location=$d/ca.pem \\
       -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password=\$(cat $d/admin.password) -L
confluent-kafka (Python):
  Producer({"bootstrap.servers": "$b", "security.protocol": "SASL_SSL", "ssl.ca.location": "$d/ca.pem",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "admin", "sasl.password": "..."})
An operator certificate (a server's rights): --tls-cert $d/operator.crt --tls-key $d/operator.key
etcd (TLS, a certificate of the CA):
  target/release/goulette etcd --etcd-endpoints https://127.0.0.1:2379 --etcd-tls-ca $d/ca.pem \\
       --etcd-tls-cert $d/operator.crt --etcd-tls-key $d/operator.key status
Rotate a certificate: replace server.crt and server.key (new connections use them within seconds).
USAGE
}

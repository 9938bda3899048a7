// TLS settings for the HTTP server and client (core/http.h), and their configuration keys.
//
// A server with a certificate listens on https://; with a client CA it also requires every
// client to present a certificate signed by that CA (mutual TLS), which is how producers
// (gateways) and consumers authenticate to a broker. A client verifies the server's certificate
// and host name against `ca_file` (or the system's CAs when empty) and presents its own
// certificate when one is set. TLS 1.2 is the oldest version either side accepts, and with it
// only forward-secret AEAD suites (no CBC).
//
// Plaintext is refused where traffic leaves the machine: a server bound to an address other
// than loopback, or a client URL to such a host, needs TLS unless the configuration says
// `insecure_plaintext: true` (RequireTlsOffLoopback).
// Thread-safety: plain values and pure functions.
#pragma once

#include <string>

#include "core/status.h"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl
struct ssl_st;  // OpenSSL's SSL

namespace sluice {

class Config;

struct TlsServerOptions {
  std::string cert_file;       // PEM certificate chain; empty: plaintext
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA bundle; set: clients must present a certificate it signed
  bool enabled() const { return !cert_file.empty(); }
};

// A client's TLS settings and the credentials it presents: a certificate (mutual TLS) and/or
// an API key sent as `Authorization: Bearer <token>` on every request (for brokers whose TLS
// ends at a proxy; cloud-broker/auth).
struct TlsClientOptions {
  std::string ca_file;    // PEM CA bundle to verify servers with; empty: the system's CAs
  std::string cert_file;  // PEM certificate chain presented to servers (mutual TLS); optional
  std::string key_file;   // its private key
  std::string bearer_token;  // optional API key
};

// Configures an OpenSSL context for a server or a client. Throws on an unreadable or invalid
// file (boost::system::system_error), as cpprestsdk expects from its context callbacks.
void ConfigureServerTls(const TlsServerOptions& options, boost::asio::ssl::context& ctx);
void ConfigureClientTls(const TlsClientOptions& options, boost::asio::ssl::context& ctx);

// Loads the files into a scratch context now, so a wrong path or a key that does not match its
// certificate fails at start-up with the file named, not at the first connection. Also refuses
// a certificate without its key (or the reverse), and a server client CA without TLS.
Status CheckServerTls(const TlsServerOptions& options);
Status CheckClientTls(const TlsClientOptions& options);

// The authenticated identity of a TLS peer: its verified certificate's subject CN, or when it has
// none its first DNS or URI subject alternative name. "" when the peer sent no certificate or
// the name holds a control byte. Call only after a handshake that verified the certificate.
std::string PeerPrincipal(ssl_st* ssl);

// True for "127.0.0.1", "::1", "localhost" and other 127/8 addresses.
bool IsLoopbackHost(const std::string& host);
// The host of "http://host:port/..." or "https://[v6]:port".
std::string UrlHost(const std::string& url);

// Fails `key` at start-up when `host` is not loopback, TLS is off and `insecure_key` (a bool key)
// is not true: plaintext must be asked for, not the default, once traffic leaves the machine.
void RequireTlsOffLoopback(const Config& cfg, const std::string& key, const std::string& host,
                           bool tls, const std::string& insecure_key);

// Reads `<prefix>.cert_file`, `.key_file`, `.client_ca_file` (server) or `.ca_file`,
// `.cert_file`, `.key_file`, `.bearer_token` (client) and checks them (Config::Fail with Check*Tls's reason).
TlsServerOptions TlsServerFromConfig(const Config& cfg, const std::string& prefix);
TlsClientOptions TlsClientFromConfig(const Config& cfg, const std::string& prefix);

}  // namespace sluice

#include "core/tls.h"

#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ssl.hpp>

#include "core/config.h"

namespace sluice {
namespace {

// TLS 1.2 suites: forward-secret AEAD only (Mozilla's "intermediate" list); CBC suites are
// refused. TLS 1.3 suites are all AEAD and stay OpenSSL's defaults.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

void CommonOptions(boost::asio::ssl::context& ctx) {
  ctx.set_options(boost::asio::ssl::context::default_workarounds |
                  boost::asio::ssl::context::no_sslv2 | boost::asio::ssl::context::no_sslv3 |
                  boost::asio::ssl::context::no_tlsv1 | boost::asio::ssl::context::no_tlsv1_1 |
                  boost::asio::ssl::context::single_dh_use);
  if (SSL_CTX_set_cipher_list(ctx.native_handle(), kTls12Ciphers) != 1) {
    throw boost::system::system_error(
        boost::system::error_code(static_cast<int>(ERR_get_error()),
                                  boost::asio::error::get_ssl_category()),
        "cannot set the TLS 1.2 cipher list");
  }
}

}  // namespace

void ConfigureServerTls(const TlsServerOptions& o, boost::asio::ssl::context& ctx) {
  CommonOptions(ctx);
  ctx.use_certificate_chain_file(o.cert_file);
  ctx.use_private_key_file(o.key_file, boost::asio::ssl::context::pem);
  if (!o.client_ca_file.empty()) {
    ctx.load_verify_file(o.client_ca_file);
    ctx.set_verify_mode(boost::asio::ssl::verify_peer |
                        boost::asio::ssl::verify_fail_if_no_peer_cert);
  }
}

void ConfigureClientTls(const TlsClientOptions& o, boost::asio::ssl::context& ctx) {
  CommonOptions(ctx);
  if (!o.ca_file.empty()) {
    ctx.load_verify_file(o.ca_file);
  }
  if (!o.cert_file.empty()) {
    ctx.use_certificate_chain_file(o.cert_file);
    ctx.use_private_key_file(o.key_file, boost::asio::ssl::context::pem);
  }
}

Status CheckServerTls(const TlsServerOptions& o) {
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status::InvalidArgument("cert_file and key_file go together");
  }
  if (!o.enabled()) {
    return o.client_ca_file.empty()
               ? Status::Ok()
               : Status::InvalidArgument("client_ca_file needs cert_file and key_file (TLS) too");
  }
  try {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_server);
    ConfigureServerTls(o, ctx);
    if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return Status::InvalidArgument("TLS key " + o.key_file + " does not match certificate " +
                                     o.cert_file);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument("TLS server files (" + o.cert_file + ", " + o.key_file +
                                   (o.client_ca_file.empty() ? "" : ", " + o.client_ca_file) +
                                   "): " + e.what());
  }
  return Status::Ok();
}

Status CheckClientTls(const TlsClientOptions& o) {
  if (o.cert_file.empty() != o.key_file.empty()) {
    return Status::InvalidArgument("cert_file and key_file go together");
  }
  if (o.ca_file.empty() && o.cert_file.empty()) {
    return Status::Ok();  // nothing to load (and no OpenSSL context built for it)
  }
  try {
    boost::asio::ssl::context ctx(boost::asio::ssl::context::tls_client);
    ConfigureClientTls(o, ctx);
    if (!o.cert_file.empty() && SSL_CTX_check_private_key(ctx.native_handle()) != 1) {
      return Status::InvalidArgument("TLS key " + o.key_file + " does not match certificate " +
                                     o.cert_file);
    }
  } catch (const std::exception& e) {
    return Status::InvalidArgument("TLS client files (" + o.ca_file + ", " + o.cert_file + ", " +
                                   o.key_file + "): " + e.what());
  }
  return Status::Ok();
}

std::string PeerPrincipal(ssl_st* ssl) {
  if (ssl == nullptr) {
    return "";
  }
  X509* cert = SSL_get_peer_certificate(ssl);  // counted reference: freed below
  if (cert == nullptr) {
    return "";
  }
  std::string principal;
  char cn[256];
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                          sizeof(cn));
  if (n > 0 && static_cast<size_t>(n) < sizeof(cn)) {
    principal.assign(cn, static_cast<size_t>(n));
  }
  if (principal.empty()) {
    auto* names = static_cast<GENERAL_NAMES*>(
        X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; names != nullptr && i < sk_GENERAL_NAME_num(names) && principal.empty();
         ++i) {
      const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
      if (g->type == GEN_DNS || g->type == GEN_URI) {
        const ASN1_IA5STRING* v = g->type == GEN_DNS ? g->d.dNSName : g->d.uniformResourceIdentifier;
        principal.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                         static_cast<size_t>(ASN1_STRING_length(v)));
      }
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  // A name with a NUL or control byte cannot be matched against an ACL safely.
  for (char c : principal) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return "";
    }
  }
  return principal;
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") {
    return true;
  }
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) {
    return (ntohl(a.s_addr) >> 24) == 127;
  }
  return false;
}

std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  if (start < url.size() && url[start] == '[') {
    size_t end = url.find(']', start);
    return end == std::string::npos ? url.substr(start) : url.substr(start + 1, end - start - 1);
  }
  size_t end = url.find_first_of(":/", start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

void RequireTlsOffLoopback(const Config& cfg, const std::string& key, const std::string& host,
                           bool tls, const std::string& insecure_key) {
  const bool insecure = cfg.GetBool(insecure_key, false);
  if (!tls && !insecure && !IsLoopbackHost(host)) {
    cfg.Fail(key, "'" + host + "' is not a loopback address: traffic to it leaves the machine, so "
                  "it needs TLS (or " + insecure_key + ": true to send it in plaintext anyway)");
  }
}

TlsServerOptions TlsServerFromConfig(const Config& cfg, const std::string& prefix) {
  TlsServerOptions o{cfg.GetString(prefix + ".cert_file", ""),
                     cfg.GetString(prefix + ".key_file", ""),
                     cfg.GetString(prefix + ".client_ca_file", "")};
  Status st = CheckServerTls(o);
  if (!st.ok()) {
    cfg.Fail(prefix, st.message());
  }
  return o;
}

TlsClientOptions TlsClientFromConfig(const Config& cfg, const std::string& prefix) {
  TlsClientOptions o{cfg.GetString(prefix + ".ca_file", ""),
                     cfg.GetString(prefix + ".cert_file", ""),
                     cfg.GetString(prefix + ".key_file", ""),
                     cfg.GetString(prefix + ".bearer_token", "")};
  if (o.bearer_token.find_first_of("\r\n") != std::string::npos) {
    cfg.Fail(prefix + ".bearer_token", "must be one line");
  }
  Status st = CheckClientTls(o);
  if (!st.ok()) {
    cfg.Fail(prefix, st.message());
  }
  return o;
}

}  // namespace sluice

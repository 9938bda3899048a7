// A throwaway PKI for TLS tests, made with the openssl command-line tool (Debian's `openssl`):
// a CA, a server certificate for 127.0.0.1/localhost, a client certificate the CA signed, and a
// second, untrusted CA with a client certificate of its own.
#pragma once

#include <string>

namespace sluice::testing {

struct TestPki {
  std::string ca;                          // ca.pem
  std::string server_cert, server_key;     // CN=127.0.0.1, SAN IP:127.0.0.1, DNS:localhost
  std::string client_cert, client_key;     // CN=gw-test, signed by ca
  std::string rogue_ca;                    // another CA
  std::string rogue_cert, rogue_key;       // CN=gw-rogue, signed by rogue_ca
};

// Writes the files under `dir`; false (with the openssl log in *error) if a step failed.
bool MakeTestPki(const std::string& dir, TestPki* out, std::string* error);

// Another client certificate signed by the PKI's CA (made by MakeTestPki in `dir`), with
// CN=`cn`: <dir>/<cn>.pem and <dir>/<cn>.key.
bool MakeClientCert(const std::string& dir, const std::string& cn, std::string* cert,
                    std::string* key, std::string* error);

}  // namespace sluice::testing

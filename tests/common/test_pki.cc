#include "tests/common/test_pki.h"

#include <filesystem>
#include <system_error>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::testing {
namespace {

bool Run(const std::string& dir, const std::vector<std::string>& argv, std::string* error) {
  const std::string log = dir + "/openssl.log";
  if (RunCommand(argv, log, 30000) != 0) {
    *error = "openssl failed:";
    for (const auto& a : argv) *error += " " + a;
    *error += "\n" + ReadFileOrEmpty(log);
    return false;
  }
  return true;
}

// A CA (self-signed) named `name`.
bool MakeCa(const std::string& dir, const std::string& name, std::string* error) {
  return Run(dir,
             {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
              "-subj", "/CN=" + name, "-keyout", dir + "/" + name + ".key", "-out",
              dir + "/" + name + ".pem"},
             error);
}

// A leaf certificate `name` signed by CA `ca`, with the given subjectAltName (may be empty).
bool MakeLeaf(const std::string& dir, const std::string& ca, const std::string& name,
              const std::string& cn, const std::string& san, std::string* error) {
  const std::string key = dir + "/" + name + ".key";
  const std::string csr = dir + "/" + name + ".csr";
  const std::string ext = dir + "/" + name + ".ext";
  WriteFile(ext, san.empty() ? "basicConstraints=CA:FALSE\n"
                             : "basicConstraints=CA:FALSE\nsubjectAltName=" + san + "\n");
  return Run(dir,
             {"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
              "-nodes", "-subj", "/CN=" + cn, "-keyout", key, "-out", csr},
             error) &&
         Run(dir,
             {"openssl", "x509", "-req", "-in", csr, "-CA", dir + "/" + ca + ".pem", "-CAkey",
              dir + "/" + ca + ".key", "-CAcreateserial", "-days", "2", "-extfile", ext, "-out",
              dir + "/" + name + ".pem"},
             error);
}

}  // namespace

bool MakeTestPki(const std::string& dir, TestPki* out, std::string* error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!MakeCa(dir, "ca", error) || !MakeCa(dir, "rogue-ca", error) ||
      !MakeLeaf(dir, "ca", "server", "127.0.0.1", "IP:127.0.0.1,DNS:localhost", error) ||
      !MakeLeaf(dir, "ca", "client", "gw-test", "", error) ||
      !MakeLeaf(dir, "rogue-ca", "rogue", "gw-rogue", "", error)) {
    return false;
  }
  out->ca = dir + "/ca.pem";
  out->server_cert = dir + "/server.pem";
  out->server_key = dir + "/server.key";
  out->client_cert = dir + "/client.pem";
  out->client_key = dir + "/client.key";
  out->rogue_ca = dir + "/rogue-ca.pem";
  out->rogue_cert = dir + "/rogue.pem";
  out->rogue_key = dir + "/rogue.key";
  return true;
}

bool MakeClientCert(const std::string& dir, const std::string& cn, std::string* cert,
                    std::string* key, std::string* error) {
  if (!MakeLeaf(dir, "ca", cn, cn, "", error)) {
    return false;
  }
  *cert = dir + "/" + cn + ".pem";
  *key = dir + "/" + cn + ".key";
  return true;
}

}  // namespace sluice::testing

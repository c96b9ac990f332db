#!/usr/bin/env python3
"""Generates backend/openapi.json.

    python3 backend/openapi.py           # writes backend/openapi.json (from any directory)
    python3 backend/openapi.py --check   # fails if backend/openapi.json is not this script's output

The JSON is committed and compiled into the service; tests/openapi.rs checks it against the router
and the cryptera-proto enums, and scripts/test.sh runs --check, so never edit the JSON by hand: edit
this script, rerun it, and commit both."""
import json
import os
import sys
def ref(n): return {"$ref": f"#/components/schemas/{n}"}
def arr(x): return {"type":"array","items":x}
S={"type":"string"}; I={"type":"integer","format":"int64"}; U32={"type":"integer","minimum":0,"maximum":4294967295}; B={"type":"boolean"}
B64={"type":"string","format":"byte","description":"standard base64"}
META={"type":"string","maxLength":1024}  # cryptera_proto::sign::MAX_METADATA_LEN
NAME={"type":"string","pattern":"^[A-Za-z0-9._-]{1,64}$"}  # api::check_name: user, token and key names
def nullable(x): return {"anyOf":[x,{"type":"null"}]}
def obj(props, required=None, extra=False, desc=None):
    o={"type":"object","properties":props,"additionalProperties":extra}
    if required: o["required"]=required
    if desc: o["description"]=desc
    return o
def enum(*v): return {"type":"string","enum":list(v)}
codes=["invalid_request","unsupported_mechanism","unauthenticated","token_expired","token_revoked","login_failed","insufficient_scope","mfa_required","environment_mismatch","mechanism_not_allowed","production_requires_hsm_kek","self_approval_refused","not_found","already_exists","idempotency_conflict","key_locked","key_deleted","request_not_pending","quota_exceeded","precondition_failed","payload_too_large","rate_limited","internal","unavailable"]
schemas={
 "Environment": enum("trial","development","production"),
 "Operation": enum("sign","keygen","read","approve","audit","admin"),
 "Role": enum("admin","signer","approver","auditor"),
 "KeyAlgorithm": enum("rsa2048","rsa3072","rsa4096","ecdsa_p256","ecdsa_p384","ed25519"),
 "Mechanism": enum("rsa_pkcs1_sha256","rsa_pkcs1_sha384","rsa_pkcs1_sha512","rsa_pss_sha256","rsa_pss_sha384","rsa_pss_sha512","ecdsa_sha256","ecdsa_sha384","ed25519"),
 "KeyState": enum("active","pending_deletion","destroyed"),
 "SigningRequestStatus": enum("pending","completed","denied","expired"),
 "ErrorBody": obj({"error": obj({"code": enum(*codes), "message": S},["code","message"])},["error"]),
 "Health": obj({"status":S},["status"]),
 "LoginRequest": obj({"organisation":S,"username":S,"password":{"type":"string","format":"password"},"totp_code":S,"environment":ref("Environment")},["organisation","username","password","environment"]),
 "UserInfo": obj({"id":S,"username":S,"roles":arr(ref("Role")),"totp_enrolled":B,"created_at":I},["id","username","roles","totp_enrolled","created_at"]),
 "LoginResponse": obj({"session_token":S,"expires_at":I,"mfa_verified":B,"user":ref("UserInfo")},["session_token","expires_at","mfa_verified","user"]),
 "CreateUserRequest": obj({"username":NAME,"password":{"type":"string","format":"password","minLength":12},"roles":dict(arr(ref("Role")),minItems=1)},["username","password","roles"]),
 "UserList": obj({"users":arr(ref("UserInfo"))},["users"]),
 "TotpEnrolment": obj({"secret_base32":S,"otpauth_uri":S},["secret_base32","otpauth_uri"]),
 "TotpConfirmRequest": obj({"code":S},["code"]),
 "KeyScope": obj({"ids":arr(S),"label_patterns":arr(S)}),
 "CreateTokenRequest": obj({"name":NAME,"operations":dict(arr(ref("Operation")),minItems=1),"keys":ref("KeyScope"),"expires_in_seconds":{"type":"integer","minimum":1,"maximum":31622400}},["name","operations","expires_in_seconds"]),
 "TokenInfo": obj({"id":S,"name":S,"operations":arr(ref("Operation")),"keys":ref("KeyScope"),"environment":ref("Environment"),"created_at":I,"expires_at":I,"revoked_at":I},["id","name","operations","keys","environment","created_at","expires_at"]),
 "CreatedToken": obj({"token":S,"info":ref("TokenInfo")},["token","info"]),
 "TokenList": obj({"tokens":arr(ref("TokenInfo"))},["tokens"]),
 "Whoami": obj({"organisation_id":S,"organisation":S,"environment":ref("Environment"),"kind":enum("user","token"),"id":S,"operations":arr(ref("Operation")),"mfa_verified":B},["organisation_id","organisation","environment","kind","id","operations","mfa_verified"]),
 "ApprovalWindow": obj({"max_signatures":dict(U32,minimum=1),"hours":dict(U32,minimum=1,maximum=720)},["max_signatures","hours"]),
 "KeyPolicy": obj({"allowed_mechanisms":arr(ref("Mechanism")),"approvals_required":U32,"approvers":arr(S),"request_expiry_seconds":{"type":"integer","minimum":1,"maximum":2592000,"default":86400},"approval_window":nullable(ref("ApprovalWindow")),"rate_limit_per_minute":dict(U32,minimum=1)}),
 "CreateKeyRequest": obj({"label":NAME,"algorithm":ref("KeyAlgorithm"),"policy":ref("KeyPolicy")},["label","algorithm"]),
 "KeyInfo": obj({"id":S,"label":S,"algorithm":ref("KeyAlgorithm"),"environment":ref("Environment"),"public_key":dict(B64,description="SubjectPublicKeyInfo DER, base64"),"certificates":arr(B64),"policy":ref("KeyPolicy"),"state":ref("KeyState"),"locked":B,"created_at":I,"purge_at":I},["id","label","algorithm","environment","public_key","certificates","policy","state","locked","created_at"]),
 "KeyList": obj({"keys":arr(ref("KeyInfo"))},["keys"]),
 "SetCertificatesRequest": obj({"certificates":arr(B64)},["certificates"]),
 "ArtifactMetadata": obj({"name":META,"hash":META,"description":META,"client":ref("ClientContext")},desc="What is being signed and who asks, for the audit log and approvers. Free text; never interpreted."),
 "ClientContext": {"type":"object","description":"Where a signing request comes from, as the client says (the PKCS#11 module fills it in): never an authentication.",
  "properties":{"host":META,"os_user":META,"program":META,"pid":U32,"ci":{"type":"object","maxProperties":16,"additionalProperties":META,"description":"CI job identifiers from the environment, by variable name"}},
  "additionalProperties":False},
 "SignRequest": dict(obj({"mechanism":ref("Mechanism"),"digest":B64,"data":dict(B64,description="at most 16 KiB; Ed25519 only"),"artifact":ref("ArtifactMetadata"),"idempotency_key":{"type":"string","minLength":1,"maxLength":128}},["mechanism","idempotency_key"],desc="Exactly one of digest and data."),oneOf=[{"required":["digest"]},{"required":["data"]}]),
 "SignResponse": obj({"request_id":S,"key_id":S,"mechanism":ref("Mechanism"),"signature":B64},["request_id","key_id","mechanism","signature"]),
 "ApprovalInfo": obj({"approver_id":S,"approver":S,"at":I},["approver_id","approver","at"]),
 "SigningRequestInfo": obj({"id":S,"key_id":S,"mechanism":ref("Mechanism"),"status":ref("SigningRequestStatus"),"requester_id":S,"digest":B64,"artifact":ref("ArtifactMetadata"),"approvals_required":U32,"approvals":arr(ref("ApprovalInfo")),"created_at":I,"expires_at":I,"signature":B64,"approved_under":S},["id","key_id","mechanism","status","requester_id","digest","artifact","approvals_required","approvals","created_at","expires_at"]),
 "SigningRequestList": obj({"requests":arr(ref("SigningRequestInfo"))},["requests"]),
 "DenyRequest": obj({"reason":S}),
 "AuditRecord": obj({"seq":I,"organisation_id":S,"at":I,"actor":S,"action":S,"target":S,"outcome":S,"details":{"type":"object","additionalProperties":S},"prev_hash":S,"hash":S},["seq","organisation_id","at","actor","action","target","outcome","details","prev_hash","hash"]),
 "AuditRecordList": obj({"records":arr(ref("AuditRecord"))},["records"]),
 "AuditCheckpointList": obj({"checkpoints":arr(ref("AuditCheckpoint"))},["checkpoints"]),
 "AuditCheckpoint": obj({"organisation_id":S,"seq":I,"head_hash":S,"at":I,"algorithm":enum("ed25519"),"public_key":B64,"signature":B64},["organisation_id","seq","head_hash","at","algorithm","public_key","signature"]),
}
def body(n): return {"required":True,"content":{"application/json":{"schema":ref(n)}}}
def resp(code,n=None,desc="OK",headers=None):
    r={"description":desc}
    if n: r["content"]={"application/json":{"schema":ref(n)}}
    if headers: r["headers"]=headers
    return {str(code):r}
ERR={"default":{"description":"Error; see docs/service-api.md for the code table","content":{"application/json":{"schema":ref("ErrorBody")}}}}
def op(summary, opname, req=None, responses=None, auth=True, params=None):
    o={"summary":summary,"responses":{**(responses or {}),**ERR}}
    if opname: o["x-cryptera-operation"]=opname
    if req: o["requestBody"]=body(req)
    if not auth: o["security"]=[]
    if params: o["parameters"]=params
    return o
ID=[{"name":"id","in":"path","required":True,"schema":S}]
ETAG={"ETag":{"schema":S}}
paths={
 "/healthz":{"get":op("Liveness",None,responses=resp(200,"Health"),auth=False)},
 "/readyz":{"get":op("Readiness (database reachable)",None,responses=resp(200,"Health"),auth=False)},
 "/metrics":{"get":{"summary":"Prometheus metrics (loopback clients only)","security":[],"responses":{"200":{"description":"text exposition format","content":{"text/plain":{"schema":S}}}}}},
 "/v1/openapi.json":{"get":{"summary":"This document","security":[],"responses":{"200":{"description":"OpenAPI 3.1","content":{"application/json":{"schema":{"type":"object"}}}}}}},
 "/v1/login":{"post":op("Log in with password and TOTP code",None,"LoginRequest",resp(200,"LoginResponse"),auth=False)},
 "/v1/whoami":{"get":op("The presented credential","any",responses=resp(200,"Whoami"))},
 "/v1/users":{"post":op("Add a user","admin (MFA)","CreateUserRequest",resp(201,"UserInfo","Created")),"get":op("List users","admin (MFA)",responses=resp(200,"UserList"))},
 "/v1/users/{id}":{"delete":op("Erase a person (GDPR): keeps only the pseudonymous id","admin (MFA)",responses={"204":{"description":"Erased"}},params=ID)},
 "/v1/users/me/totp":{"post":op("Start TOTP enrolment","user session",responses=resp(200,"TotpEnrolment"))},
 "/v1/users/me/totp/confirm":{"post":op("Confirm TOTP enrolment","user session","TotpConfirmRequest",{"204":{"description":"Enrolled"}})},
 "/v1/tokens":{"post":op("Create an access token (secret shown once)","admin (MFA)","CreateTokenRequest",resp(201,"CreatedToken","Created")),"get":op("List access tokens","admin (MFA)",responses=resp(200,"TokenList"))},
 "/v1/tokens/{id}":{"delete":op("Revoke an access token","admin (MFA)",responses={"204":{"description":"Revoked"}},params=ID)},
 "/v1/keys":{"post":op("Generate a key in the caller's environment","keygen","CreateKeyRequest",resp(201,"KeyInfo","Created")),"get":op("List keys (ETag; If-None-Match gives 304)","read",responses={**resp(200,"KeyList",headers=ETAG),"304":{"description":"Not modified"}})},
 "/v1/keys/{id}":{"get":op("Get a key (ETag; If-None-Match gives 304)","read",responses={**resp(200,"KeyInfo",headers=ETAG),"304":{"description":"Not modified"}},params=ID),"delete":op("Schedule deletion","admin",responses=resp(200,"KeyInfo"),params=ID)},
 "/v1/keys/{id}/restore":{"post":op("Cancel a scheduled deletion","admin",responses=resp(200,"KeyInfo"),params=ID)},
 "/v1/keys/{id}/lock":{"post":op("Lock against deletion","admin",responses=resp(200,"KeyInfo"),params=ID),"delete":op("Remove the lock (user session with MFA only)","admin (MFA)",responses=resp(200,"KeyInfo"),params=ID)},
 "/v1/keys/{id}/certificates":{"put":op("Replace the certificate chain","admin","SetCertificatesRequest",resp(200,"KeyInfo"),params=ID)},
 "/v1/keys/{id}/policy":{"put":op("Replace the key's policy (audited with old and new)","admin","KeyPolicy",resp(200,"KeyInfo"),params=ID)},
 "/v1/keys/{id}/sign":{"post":op("Sign a digest (or small data)","sign","SignRequest",{**resp(200,"SignResponse"),**resp(202,"SigningRequestInfo","Approvals required",{"Location":{"schema":S},"Retry-After":{"schema":{"type":"integer"}}})},params=ID)},
 "/v1/signing-requests":{"get":op("List signing requests","read",responses=resp(200,"SigningRequestList"),params=[{"name":"status","in":"query","required":False,"schema":ref("SigningRequestStatus")}])},
 "/v1/signing-requests/{id}":{"get":op("Get a signing request","read",responses=resp(200,"SigningRequestInfo"),params=ID)},
 "/v1/signing-requests/{id}/approve":{"post":op("Approve","approve (MFA)",responses=resp(200,"SigningRequestInfo"),params=ID)},
 "/v1/signing-requests/{id}/deny":{"post":{**op("Deny","approve (MFA)",responses=resp(200,"SigningRequestInfo"),params=ID),"requestBody":{"required":False,"content":{"application/json":{"schema":ref("DenyRequest")}}}}},
 "/v1/audit/records":{"get":op("Audit records (JSON, or JSON lines with Accept: application/x-ndjson)","audit",responses=resp(200,"AuditRecordList"),params=[{"name":"after","in":"query","schema":dict(I,minimum=0)},{"name":"limit","in":"query","schema":{"type":"integer","minimum":1,"maximum":10000}},{"name":"action","in":"query","schema":S,"description":"e.g. key.sign"},{"name":"target","in":"query","schema":S,"description":"e.g. a key id"},{"name":"since","in":"query","schema":I},{"name":"until","in":"query","schema":I}])},
 "/v1/audit/checkpoint":{"get":op("Signed checkpoint of the audit chain head (made now and kept)","audit",responses=resp(200,"AuditCheckpoint"))},
 "/v1/audit/checkpoints":{"get":op("Checkpoints the service kept, oldest first","audit",responses=resp(200,"AuditCheckpointList"))},
}
# Device certificate provisioning (issue 10): schemas and paths, added to backend/openapi.py's dicts.
def add_devices(schemas, paths, ref, arr, obj, enum, op, resp, ID, S, I, B, B64):
    schemas.update({
     "CertificateProfile": {"type":"string","pattern":"^[A-Za-z0-9._-]{1,64}$","description":"profile name: built in device and code_signing, or one the organisation defined (PUT /v1/profiles/{name})"},
     "CaKind": enum("root","issuing"),
     "CertificateStatus": enum("active","superseded","revoked"),
     "RevocationReason": enum("unspecified","key_compromise","affiliation_changed","superseded","cessation_of_operation"),
     "CreateCaRequest": obj({"public_url":dict(S,description="service base URL for the CRL distribution point; defaults to http://{Host}")}),
     "CaInfo": obj({"id":S,"kind":ref("CaKind"),"name":S,"environment":ref("Environment"),"certificate":dict(B64,description="DER certificate, base64"),"crl_url":S,"created_at":I},["id","kind","name","environment","certificate","crl_url","created_at"]),
     "CaList": obj({"cas":arr(ref("CaInfo"))},["cas"]),
     "EnrollRequest": dict(obj({"csr_pem":S,"csr_der":B64,"profile":ref("CertificateProfile"),"renew":B},desc="Exactly one of csr_pem and csr_der."),oneOf=[{"required":["csr_pem"]},{"required":["csr_der"]}]),
     "DeviceCertificate": obj({"serial":S,"profile":ref("CertificateProfile"),"status":ref("CertificateStatus"),"certificate":B64,"not_before":I,"not_after":I,"issued_at":I,"revoked_at":I,"revocation_reason":ref("RevocationReason")},["serial","profile","status","certificate","not_before","not_after","issued_at"]),
     "EnrollResponse": obj({"device_id":S,"environment":ref("Environment"),"certificate":ref("DeviceCertificate"),"chain":arr(B64),"existing":B},["device_id","environment","certificate","chain","existing"]),
     "DeviceInfo": obj({"device_id":S,"environment":ref("Environment"),"certificates":arr(ref("DeviceCertificate"))},["device_id","environment","certificates"]),
     "DeviceList": obj({"devices":arr(ref("DeviceInfo"))},["devices"]),
     "RevokeRequest": obj({"serial":S,"reason":ref("RevocationReason")}),
     "ProfileKeyType": enum("rsa","ecdsa_p256","ecdsa_p384","ed25519"),
     "KeyUsageBit": enum("digital_signature","content_commitment","key_encipherment","key_agreement"),
     "ExtendedKeyUsage": enum("client_auth","server_auth","code_signing","email_protection"),
     "ProfileDefinition": obj({"key_types":dict(arr(ref("ProfileKeyType")),minItems=1),"validity_days":{"type":"integer","format":"int32","minimum":1,"maximum":825},"key_usage":dict(arr(ref("KeyUsageBit")),minItems=1),"extended_key_usage":dict(arr(ref("ExtendedKeyUsage")),minItems=1),"subject":dict(S,description="RFC 4514 name template, e.g. CN={device_id},O={org}; placeholders {device_id}, {org}, {environment} only"),"san":dict(arr(dict(S,description="dns:<name>, uri:<uri> or email:<address>, with the same placeholders")),minItems=1,maxItems=8)},["key_types","validity_days","key_usage","extended_key_usage","subject","san"]),
     "ProfileInfo": obj({"name":ref("CertificateProfile"),"environment":ref("Environment"),"built_in":B,"definition":ref("ProfileDefinition"),"updated_at":I},["name","environment","built_in","definition"]),
     "ProfileList": obj({"profiles":arr(ref("ProfileInfo"))},["profiles"]),
     "CaSigningKind": enum("issue","revoke"),
     "AuthMethod": enum("bearer","client_certificate"),
     "CaSigningRecord": obj({"id":S,"kind":ref("CaSigningKind"),"ca_id":S,"environment":ref("Environment"),"device_id":S,"serial":S,"profile":ref("CertificateProfile"),"actor":S,"auth":ref("AuthMethod"),"mechanism":ref("Mechanism"),"digest":dict(B64,description="SHA-256 of the signed TBSCertificate (issue)"),"signature":dict(B64,description="the CA's signature (issue)"),"reason":ref("RevocationReason"),"at":I},["id","kind","ca_id","environment","device_id","serial","profile","actor","auth","at"]),
     "CaSigningRecordList": obj({"records":arr(ref("CaSigningRecord"))},["records"]),
    })
    Q=[{"name":"q","in":"query","required":False,"schema":S,"description":"device ids containing this text"},{"name":"limit","in":"query","required":False,"schema":{"type":"integer","minimum":1,"maximum":1000}}]
    NAME=[{"name":"name","in":"path","required":True,"schema":ref("CertificateProfile")}]
    P7={"description":"base64 certs-only PKCS#7","content":{"application/pkcs7-mime":{"schema":S}}}
    P10={"required":True,"content":{"application/pkcs10":{"schema":dict(S,description="base64 DER PKCS#10 request; the subject CN is the device id")}}}
    paths.update({
     "/v1/cas":{"post":op("Create the environment's root and issuing CA (production needs a PKCS#11 KEK)","admin","CreateCaRequest",resp(201,"CaList","Created")),"get":op("The environment's CAs","read",responses=resp(200,"CaList"))},
     "/v1/cas/{id}/crl":{"get":{**op("The issuing CA's CRL (DER), signed now",None,responses={"200":{"description":"CRL","content":{"application/pkix-crl":{"schema":{"type":"string","format":"binary"}}}}},auth=False,params=ID)}},
     "/v1/devices":{"get":op("Search the device registry","read",responses=resp(200,"DeviceList"),params=Q)},
     "/v1/devices/export":{"get":op("Export the registry as JSON lines (one DeviceInfo per line)","read",responses={"200":{"description":"JSON lines","content":{"application/x-ndjson":{"schema":S}}}},params=Q)},
     "/v1/devices/{id}":{"get":op("A device and its certificate history, newest first","read",responses=resp(200,"DeviceInfo"),params=ID)},
     "/v1/devices/{id}/enroll":{"post":op("Issue a certificate from a CSR (idempotent by device id; renew to replace a live one)","sign (device id in the token's scope)","EnrollRequest",{**resp(201,"EnrollResponse","Issued"),**resp(200,"EnrollResponse","The live certificate for the same key (a retry)")},params=ID)},
     "/v1/devices/{id}/revoke":{"post":op("Revoke a certificate (or every unrevoked one) with a reason","admin","RevokeRequest",resp(200,"DeviceInfo"),params=ID)},
     "/.well-known/est/cacerts":{"get":op("EST (RFC 7030) CA certificates","read",responses={"200":P7})},
     "/.well-known/est/simpleenroll":{"post":{**op("EST enrolment","sign",responses={"200":P7}),"requestBody":P10}},
     "/.well-known/est/simplereenroll":{"post":{**op("EST re-enrolment (renewal); without Authorization, authenticated by the device's current certificate as the TLS client certificate","sign, or the device's active certificate (TLS client auth)",responses={"200":P7}),"requestBody":P10,"security":[{"bearer":[]},{}]}},
     "/v1/cas/signing-records":{"get":op("CA signing records: certificates issued (TBS digest, CA signature) and revocations, newest first (JSON lines with Accept: application/x-ndjson)","read",responses=resp(200,"CaSigningRecordList"),params=[{"name":"device","in":"query","required":False,"schema":S},{"name":"serial","in":"query","required":False,"schema":S},{"name":"limit","in":"query","required":False,"schema":{"type":"integer","minimum":1,"maximum":10000}}])},
     "/v1/profiles":{"get":op("The environment's certificate profiles: the organisation's own and the built-in ones it has not replaced","read",responses=resp(200,"ProfileList"))},
     "/v1/profiles/{name}":{"get":op("A certificate profile","read",responses=resp(200,"ProfileInfo"),params=NAME),"put":op("Create or replace the organisation's profile of this name (audited)","admin","ProfileDefinition",resp(200,"ProfileInfo"),params=NAME),"delete":op("Delete the organisation's profile (a built-in one of that name applies again)","admin",responses={"204":{"description":"Deleted"}},params=NAME)},
    })
add_devices(schemas, paths, ref, arr, obj, enum, op, resp, ID, S, I, B, B64)
doc={"openapi":"3.1.0","info":{"title":"Cryptera signing service","version":"1","description":"See docs/service-api.md. Request and response types are the structs of the cryptera-proto crate."},
 "servers":[{"url":"/"}],
 "security":[{"bearer":[]}],
 "components":{"securitySchemes":{"bearer":{"type":"http","scheme":"bearer","description":"cryptera_at_... access token or cryptera_us_... session token"}},"schemas":schemas},
 "paths":paths}

OUT=os.path.join(os.path.dirname(os.path.abspath(__file__)),"openapi.json")
text=json.dumps(doc,indent=2)+"\n"
if sys.argv[1:]==["--check"]:
    with open(OUT,encoding="utf-8") as f: committed=f.read()
    if committed!=text:
        import difflib
        sys.stdout.writelines(difflib.unified_diff(committed.splitlines(True),text.splitlines(True),"backend/openapi.json (committed)","backend/openapi.py (generated)"))
        sys.exit("backend/openapi.json differs from what backend/openapi.py generates: edit the script and rerun it (never the JSON by hand)")
elif sys.argv[1:]:
    sys.exit("usage: python3 backend/openapi.py [--check]")
else:
    with open(OUT,"w",encoding="utf-8") as f: f.write(text)

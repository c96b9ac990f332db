/*
 * Registers a policy callback through C_CrypteraSetPolicyCallback and checks that it is asked before a
 * signature with the event as JSON, that rejecting gives CKR_FUNCTION_REJECTED and allowing signs.
 *   policy-callback MODULE TOKEN-LABEL PIN KEY-LABEL
 */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "cryptera_pkcs11.h"

static int allow;
static int asked;
static char last_event[4096];

static unsigned long policy(const char *event_json, void *context) {
    (void)context;
    asked++;
    snprintf(last_event, sizeof last_event, "%s", event_json);
    return allow ? CKR_OK : CKR_FUNCTION_REJECTED;
}

int main(int argc, char **argv) {
    if (argc != 5) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) return 1;
    CK_C_CrypteraSetPolicyCallback set = (CK_C_CrypteraSetPolicyCallback)dlsym(lib, CRYPTERA_SET_POLICY_CALLBACK_SYMBOL);
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR p11;
    if (!set || !get || get(&p11) != CKR_OK) return 1;
    if (set(policy, NULL) != CKR_OK) return 1;
    if (p11->C_Initialize(NULL) != CKR_OK) return 1;
    CK_SLOT_ID slots[16];
    CK_ULONG count = 16;
    p11->C_GetSlotList(CK_TRUE, slots, &count);
    CK_SESSION_HANDLE session = 0;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (p11->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, argv[2], strlen(argv[2])) == 0) {
            p11->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &session);
        }
    }
    if (!session || p11->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3])) != CKR_OK) return 1;
    CK_OBJECT_CLASS class = CKO_PRIVATE_KEY;
    CK_ATTRIBUTE query[] = {{CKA_CLASS, &class, sizeof class}, {CKA_LABEL, argv[4], strlen(argv[4])}};
    CK_OBJECT_HANDLE key;
    CK_ULONG found = 0;
    p11->C_FindObjectsInit(session, query, 2);
    p11->C_FindObjects(session, &key, 1, &found);
    p11->C_FindObjectsFinal(session);
    if (found != 1) return 1;
    CK_MECHANISM mechanism = {CKM_ECDSA_SHA256, NULL, 0};
    CK_BYTE data[] = "policy-checked data", signature[256];
    CK_ULONG length = sizeof signature;
    int failures = 0;

    allow = 0;
    p11->C_SignInit(session, &mechanism, key);
    CK_RV rv = p11->C_Sign(session, data, sizeof data - 1, signature, &length);
    if (rv != CKR_FUNCTION_REJECTED) { printf("FAIL rejecting callback gave 0x%lx\n", rv); failures++; }
    else printf("ok   a rejecting callback gives CKR_FUNCTION_REJECTED\n");
    if (asked != 1 || !strstr(last_event, "\"event\":\"sign\"") || !strstr(last_event, argv[4])) {
        printf("FAIL callback not asked with the event: %s\n", last_event); failures++;
    } else printf("ok   the callback sees the event as JSON\n");

    allow = 1;
    length = sizeof signature;
    p11->C_SignInit(session, &mechanism, key);
    rv = p11->C_Sign(session, data, sizeof data - 1, signature, &length);
    if (rv != CKR_OK) { printf("FAIL allowing callback gave 0x%lx\n", rv); failures++; }
    else printf("ok   an allowing callback lets the signature through\n");

    set(NULL, NULL);
    allow = 0;
    length = sizeof signature;
    p11->C_SignInit(session, &mechanism, key);
    rv = p11->C_Sign(session, data, sizeof data - 1, signature, &length);
    if (rv != CKR_OK || asked != 2) { printf("FAIL removed callback still asked (0x%lx)\n", rv); failures++; }
    else printf("ok   a removed callback is no longer asked\n");

    p11->C_Finalize(NULL);
    printf("%d passed, %d failed\n", 4 - failures, failures);
    return failures != 0;
}

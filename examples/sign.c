/*
 * Loads the Cryptera PKCS#11 module with dlopen(), logs in to a token, signs a message with the
 * private key carrying a given label (CKM_ECDSA_SHA256 for EC keys, CKM_SHA256_RSA_PKCS for RSA) and
 * verifies the signature with the matching public key.
 *
 *   cc -I include -I /usr/include/p11-kit-1 examples/sign.c -o sign -ldl
 *   ./sign target/release/libcryptera_pkcs11.so TOKEN-LABEL USER-PIN KEY-LABEL
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "cryptera_pkcs11.h"

static int fail(const char *what, CK_RV rv) {
    fprintf(stderr, "%s failed: CKR 0x%lx\n", what, (unsigned long)rv);
    return 1;
}

static CK_OBJECT_HANDLE find_key(CK_FUNCTION_LIST_PTR p11, CK_SESSION_HANDLE session, CK_OBJECT_CLASS class,
                                 const char *label) {
    CK_ATTRIBUTE query[] = {
        {CKA_CLASS, &class, sizeof class},
        {CKA_LABEL, (void *)label, strlen(label)},
    };
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    if (p11->C_FindObjectsInit(session, query, 2) != CKR_OK) return CK_INVALID_HANDLE;
    if (p11->C_FindObjects(session, &key, 1, &found) != CKR_OK || found != 1) key = CK_INVALID_HANDLE;
    p11->C_FindObjectsFinal(session);
    return key;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODULE TOKEN-LABEL USER-PIN KEY-LABEL\n", argv[0]);
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], dlerror());
        return 1;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR p11 = NULL;
    CK_RV rv;
    if (!get_list || (rv = get_list(&p11)) != CKR_OK) return fail("C_GetFunctionList", CKR_GENERAL_ERROR);
    CK_C_INITIALIZE_ARGS args = {0};
    args.flags = CKF_OS_LOCKING_OK;
    if ((rv = p11->C_Initialize(&args)) != CKR_OK) return fail("C_Initialize", rv);

    CK_ULONG count = 0;
    if ((rv = p11->C_GetSlotList(CK_TRUE, NULL, &count)) != CKR_OK) return fail("C_GetSlotList", rv);
    CK_SLOT_ID *slots = calloc(count, sizeof *slots);
    if ((rv = p11->C_GetSlotList(CK_TRUE, slots, &count)) != CKR_OK) return fail("C_GetSlotList", rv);
    CK_SLOT_ID slot = (CK_SLOT_ID)-1;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        if (p11->C_GetTokenInfo(slots[i], &info) != CKR_OK) continue;
        size_t len = strlen(argv[2]);
        if (len <= sizeof info.label && memcmp(info.label, argv[2], len) == 0 &&
            (len == sizeof info.label || info.label[len] == ' ')) {
            slot = slots[i];
            break;
        }
    }
    free(slots);
    if (slot == (CK_SLOT_ID)-1) {
        fprintf(stderr, "no token labelled %s\n", argv[2]);
        return 1;
    }

    CK_SESSION_HANDLE session;
    if ((rv = p11->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &session)) != CKR_OK)
        return fail("C_OpenSession", rv);
    if ((rv = p11->C_Login(session, CKU_USER, (CK_UTF8CHAR_PTR)argv[3], strlen(argv[3]))) != CKR_OK)
        return fail("C_Login", rv);

    CK_OBJECT_HANDLE private_key = find_key(p11, session, CKO_PRIVATE_KEY, argv[4]);
    CK_OBJECT_HANDLE public_key = find_key(p11, session, CKO_PUBLIC_KEY, argv[4]);
    if (private_key == CK_INVALID_HANDLE || public_key == CK_INVALID_HANDLE) {
        fprintf(stderr, "no key pair labelled %s\n", argv[4]);
        return 1;
    }
    CK_KEY_TYPE key_type;
    CK_ATTRIBUTE type_attr = {CKA_KEY_TYPE, &key_type, sizeof key_type};
    if ((rv = p11->C_GetAttributeValue(session, private_key, &type_attr, 1)) != CKR_OK)
        return fail("C_GetAttributeValue", rv);
    CK_MECHANISM mechanism = {key_type == CKK_EC ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};

    const char *message = "signed through the Cryptera PKCS#11 module";
    CK_BYTE signature[1024];
    CK_ULONG signature_len = 0;
    if ((rv = p11->C_SignInit(session, &mechanism, private_key)) != CKR_OK) return fail("C_SignInit", rv);
    /* Length query first, as the spec's convention allows. */
    if ((rv = p11->C_Sign(session, (CK_BYTE_PTR)message, strlen(message), NULL, &signature_len)) != CKR_OK)
        return fail("C_Sign (length)", rv);
    if (signature_len > sizeof signature) return fail("signature length", CKR_GENERAL_ERROR);
    if ((rv = p11->C_Sign(session, (CK_BYTE_PTR)message, strlen(message), signature, &signature_len)) != CKR_OK)
        return fail("C_Sign", rv);

    if ((rv = p11->C_VerifyInit(session, &mechanism, public_key)) != CKR_OK) return fail("C_VerifyInit", rv);
    if ((rv = p11->C_Verify(session, (CK_BYTE_PTR)message, strlen(message), signature, signature_len)) != CKR_OK)
        return fail("C_Verify", rv);

    signature[0] ^= 1;
    if ((rv = p11->C_VerifyInit(session, &mechanism, public_key)) != CKR_OK) return fail("C_VerifyInit", rv);
    rv = p11->C_Verify(session, (CK_BYTE_PTR)message, strlen(message), signature, signature_len);
    if (rv != CKR_SIGNATURE_INVALID) return fail("C_Verify of a damaged signature", rv);

    printf("signed %lu bytes with %s key '%s', signature of %lu bytes verified\n", (unsigned long)strlen(message),
           key_type == CKK_EC ? "EC" : "RSA", argv[4], (unsigned long)signature_len);
    p11->C_Logout(session);
    p11->C_CloseSession(session);
    p11->C_Finalize(NULL);
    dlclose(lib);
    return 0;
}

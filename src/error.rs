//! The module's one error type. Every safe core function returns `Result<_, Error>`; the ABI layer turns
//! an `Error` into a `CK_RV` through [`Error::rv`], the single, exhaustive mapping.

use cryptoki_sys::*;

/// A failure of a PKCS#11 operation, named after what went wrong rather than after the wire code.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("the module is not initialised")]
    NotInitialized,
    #[error("the module is already initialised")]
    AlreadyInitialized,
    #[error("invalid arguments")]
    ArgumentsBad,
    #[error("the locking model asked for cannot be provided")]
    CantLock,
    #[error("output buffer too small")]
    BufferTooSmall,
    #[error("no such slot")]
    SlotIdInvalid,
    #[error("no token in the slot")]
    TokenNotPresent,
    #[error("token store not recognised: {0}")]
    TokenNotRecognized(String),
    #[error("token is write protected")]
    TokenWriteProtected,
    #[error("no such session")]
    SessionHandleInvalid,
    #[error("session is read-only")]
    SessionReadOnly,
    #[error("sessions are open on the token")]
    SessionExists,
    #[error("a read-only session exists")]
    SessionReadOnlyExists,
    #[error("a read/write SO session exists")]
    SessionReadWriteSoExists,
    #[error("serial sessions are not supported")]
    SessionParallelNotSupported,
    #[error("no such object")]
    ObjectHandleInvalid,
    #[error("no such key")]
    KeyHandleInvalid,
    #[error("the attribute is read-only")]
    AttributeReadOnly,
    #[error("the attribute is sensitive")]
    AttributeSensitive,
    #[error("invalid attribute type")]
    AttributeTypeInvalid,
    #[error("invalid attribute value")]
    AttributeValueInvalid,
    #[error("the template is incomplete")]
    TemplateIncomplete,
    #[error("the template is inconsistent")]
    TemplateInconsistent,
    #[error("the action is prohibited on this object")]
    ActionProhibited,
    #[error("no such mechanism")]
    MechanismInvalid,
    #[error("invalid mechanism parameter")]
    MechanismParamInvalid,
    #[error("key type does not fit the mechanism")]
    KeyTypeInconsistent,
    #[error("the key does not permit this function")]
    KeyFunctionNotPermitted,
    #[error("key size out of range")]
    KeySizeRange,
    #[error("the key cannot be wrapped")]
    KeyNotWrappable,
    #[error("the key is not extractable")]
    KeyUnextractable,
    #[error("an operation is already active")]
    OperationActive,
    #[error("no operation is active")]
    OperationNotInitialized,
    #[error("invalid input data")]
    DataInvalid,
    #[error("input data length out of range")]
    DataLenRange,
    #[error("invalid encrypted data")]
    EncryptedDataInvalid,
    #[error("encrypted data length out of range")]
    EncryptedDataLenRange,
    #[error("invalid signature")]
    SignatureInvalid,
    #[error("signature length out of range")]
    SignatureLenRange,
    #[error("invalid wrapped key")]
    WrappedKeyInvalid,
    #[error("wrapped key length out of range")]
    WrappedKeyLenRange,
    #[error("invalid wrapping key")]
    WrappingKeyHandleInvalid,
    #[error("invalid unwrapping key")]
    UnwrappingKeyHandleInvalid,
    #[error("domain parameters not supported")]
    CurveNotSupported,
    #[error("wrong PIN")]
    PinIncorrect,
    #[error("PIN has invalid characters")]
    PinInvalid,
    #[error("PIN length out of range")]
    PinLenRange,
    #[error("PIN is locked")]
    PinLocked,
    #[error("PIN (access token) expired")]
    PinExpired,
    #[error("user already logged in")]
    UserAlreadyLoggedIn,
    #[error("another user is already logged in")]
    UserAnotherAlreadyLoggedIn,
    #[error("user not logged in")]
    UserNotLoggedIn,
    #[error("user PIN not initialised")]
    UserPinNotInitialized,
    #[error("invalid user type")]
    UserTypeInvalid,
    #[error("the function is not supported")]
    FunctionNotSupported,
    #[error("the function was rejected")]
    FunctionRejected,
    #[error("the token store failed: {0}")]
    Device(String),
    #[error("memory allocation failed")]
    HostMemory,
    #[error("internal error: {0}")]
    General(String),
}

impl Error {
    /// The PKCS#11 return value for this error: the one mapping in the module.
    pub fn rv(&self) -> CK_RV {
        match self {
            Error::NotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            Error::AlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            Error::ArgumentsBad => CKR_ARGUMENTS_BAD,
            Error::CantLock => CKR_CANT_LOCK,
            Error::BufferTooSmall => CKR_BUFFER_TOO_SMALL,
            Error::SlotIdInvalid => CKR_SLOT_ID_INVALID,
            Error::TokenNotPresent => CKR_TOKEN_NOT_PRESENT,
            Error::TokenNotRecognized(_) => CKR_TOKEN_NOT_RECOGNIZED,
            Error::TokenWriteProtected => CKR_TOKEN_WRITE_PROTECTED,
            Error::SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            Error::SessionReadOnly => CKR_SESSION_READ_ONLY,
            Error::SessionExists => CKR_SESSION_EXISTS,
            Error::SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            Error::SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            Error::SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            Error::ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            Error::KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            Error::AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            Error::AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            Error::AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            Error::AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            Error::TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            Error::TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            Error::ActionProhibited => CKR_ACTION_PROHIBITED,
            Error::MechanismInvalid => CKR_MECHANISM_INVALID,
            Error::MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            Error::KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            Error::KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            Error::KeySizeRange => CKR_KEY_SIZE_RANGE,
            Error::KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
            Error::KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
            Error::OperationActive => CKR_OPERATION_ACTIVE,
            Error::OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            Error::DataInvalid => CKR_DATA_INVALID,
            Error::DataLenRange => CKR_DATA_LEN_RANGE,
            Error::EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            Error::EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            Error::SignatureInvalid => CKR_SIGNATURE_INVALID,
            Error::SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            Error::WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
            Error::WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            Error::WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
            Error::UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            Error::CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            Error::PinIncorrect => CKR_PIN_INCORRECT,
            Error::PinInvalid => CKR_PIN_INVALID,
            Error::PinLenRange => CKR_PIN_LEN_RANGE,
            Error::PinLocked => CKR_PIN_LOCKED,
            Error::PinExpired => CKR_PIN_EXPIRED,
            Error::UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            Error::UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            Error::UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            Error::UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            Error::UserTypeInvalid => CKR_USER_TYPE_INVALID,
            Error::FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            Error::FunctionRejected => CKR_FUNCTION_REJECTED,
            Error::Device(_) => CKR_DEVICE_ERROR,
            Error::HostMemory => CKR_HOST_MEMORY,
            Error::General(_) => CKR_GENERAL_ERROR,
        }
    }

    /// Whether this error ends the active cryptographic operation. The spec keeps the operation alive
    /// only for a short output buffer (length query) and for a missing login on a context-specific key.
    pub fn ends_operation(&self) -> bool {
        !matches!(self, Error::BufferTooSmall | Error::UserNotLoggedIn)
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        Error::Device(format!("sqlite: {err}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

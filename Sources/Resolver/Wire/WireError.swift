/// Every way a message can be malformed. Decoding never traps on hostile input: each
/// failure becomes one of these, and the answering layer maps it to FORMERR (RFC 1035 §4.1.1)
/// or, when not even the header could be read, drops the packet.
public enum WireError: Error, Equatable, Sendable {
    /// The message ended before a field it announced.
    case truncated
    /// A label longer than 63 octets (RFC 1035 §2.3.4).
    case labelTooLong
    /// A name longer than 255 octets in wire form (RFC 1035 §2.3.4).
    case nameTooLong
    /// A compression pointer that points at or after itself, or loops (RFC 1035 §4.1.4).
    case badPointer
    /// The 0b01/0b10 label types (RFC 6891 §5 retired extended labels).
    case badLabelType
    /// A name that is not a sequence of labels ending in the root.
    case malformedName
    /// QDCOUNT other than one in a query.
    case badQuestionCount
    /// An OPT record in the answer or authority section, or more than one (RFC 6891 §6.1.1).
    case misplacedOPT
    case duplicateOPT
    /// OPT owner other than the root (RFC 6891 §6.1.2).
    case badOPTOwner
    /// An EDNS option whose length runs past the OPT RDATA.
    case badOption
    /// An ECS option that violates RFC 7871 §6 / §7.1.
    case badClientSubnet(String)
    /// A COOKIE option whose length is not 8 or 16–40 (RFC 7873 §5.2.2).
    case badCookie
}

import Testing
@testable import resolverd

/// `ReportRequest.parse`: the plain load report it takes, every prefix of one (wait for more),
/// and the requests it leaves to the full HTTP/1.1 parser.
struct ReportRequestTests {
    static func put(_ path: String = "/v1/sites/fra1/load", headers: [String] = ["Host: x", "Authorization: Bearer t-0123456789abcdef"],
                    body: String = #"{"utilization":0.5}"#, length: Bool = true) -> String {
        var lines = ["PUT \(path) HTTP/1.1"] + headers
        if length { lines.append("Content-Length: \(body.utf8.count)") }
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    static func parse(_ text: String) -> ReportRequest.Parse {
        Array(text.utf8).withUnsafeBytes { ReportRequest.parse($0) }
    }

    static func text(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    @Test func aPlainReportIsTakenWhole() throws {
        let request = Self.put()
        guard case .report(let report) = Self.parse(request) else { Issue.record("not taken"); return }
        #expect(Self.text(request, report.site) == "fra1")
        #expect(report.authorization.map { Self.text(request, $0) } == "Bearer t-0123456789abcdef")
        #expect(Self.text(request, report.body) == #"{"utilization":0.5}"#)
        #expect(!report.close)
        #expect(report.length == request.utf8.count)
    }

    /// Every strict prefix of a report is the start of one; the next request behind it is not
    /// part of it.
    @Test func aReportCutAnywhereWaitsForTheRest() {
        let request = Self.put()
        let bytes = Array(request.utf8)
        for end in 0..<bytes.count {
            let parse = bytes[0..<end].withUnsafeBytes { ReportRequest.parse($0) }
            #expect(parse == .incomplete, "cut at \(end)")
        }
        let two = request + Self.put("/v1/sites/ams1/load")
        guard case .report(let first) = Self.parse(two) else { Issue.record("not taken"); return }
        #expect(first.length == bytes.count)
        #expect(Self.text(two, first.site) == "fra1")
    }

    @Test func fieldsAreReadAsHTTPSaysTheyAre() throws {
        // Names in any case, whitespace around values, Connection as a list, no body at all.
        let cases: [(String, String?, Bool, String)] = [
            (Self.put(headers: ["AUTHORIZATION:   Bearer x-0123456789abcdef  ", "connection: keep-alive"]),
             "Bearer x-0123456789abcdef", false, #"{"utilization":0.5}"#),
            (Self.put(headers: ["Connection: keep-alive, Close"]), nil, true, #"{"utilization":0.5}"#),
            (Self.put(headers: ["Connection:close"]), nil, true, #"{"utilization":0.5}"#),
            (Self.put(headers: ["Connection: closed"]), nil, false, #"{"utilization":0.5}"#),
            (Self.put(headers: ["X-Other: a: b", "User-Agent: agent/1.0"], body: "", length: false), nil, false, ""),
            (Self.put(headers: ["Content-Type:\tapplication/json"]), nil, false, #"{"utilization":0.5}"#),
        ]
        for (request, authorization, close, body) in cases {
            guard case .report(let report) = Self.parse(request) else { Issue.record("not taken: \(request)"); continue }
            #expect(report.authorization.map { Self.text(request, $0) } == authorization, "\(request)")
            #expect(report.close == close, "\(request)")
            #expect(Self.text(request, report.body) == body, "\(request)")
        }
    }

    /// What the full parser must see: other requests, and every unusual form of a report.
    @Test func anythingElseIsTheFullParsers() {
        let big = String(repeating: "a", count: ReportRequest.maxHead)
        let cases: [String] = [
            "GET /v1/sites HTTP/1.1\r\n\r\n",
            "POST /v1/sites/fra1/load HTTP/1.1\r\n\r\n",
            "put /v1/sites/fra1/load HTTP/1.1\r\n\r\n",
            Self.put().replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0"),
            Self.put("/v1/sites/fra1/load?x=1"),
            Self.put("/v1/sites/fr%31/load"),
            Self.put("/v1/sites//load"),
            Self.put("/v1/sites/a/b/load"),
            Self.put("/v1/sites/fra1/loads"),
            Self.put("/v1/loads"),
            Self.put(headers: ["Transfer-Encoding: chunked"], length: false),
            Self.put(headers: ["Expect: 100-continue"]),
            Self.put(headers: ["Upgrade: h2c"]),
            Self.put(headers: ["Content-Length: 19"]),                          // a second Content-Length
            Self.put(headers: ["Authorization: Bearer a", "Authorization: Bearer b"]),
            Self.put(headers: ["X-Folded: a", " b"]),                           // obsolete line folding
            Self.put(headers: ["Host : x"]),                                    // space before the colon (RFC 9112 §5.1)
            Self.put(headers: ["Host: x\ny: z"]),                               // a bare LF
            Self.put(headers: ["Host: a\u{1}b"]),                               // a control character
            Self.put(headers: [": empty name"]),
            Self.put(headers: ["Content-Length: 1x"], length: false),
            Self.put(headers: ["Content-Length: -1"], length: false),
            Self.put(headers: ["Content-Length: \(ControlAPI.maxBody + 1)"], length: false),
            Self.put(headers: ["X-Big: \(big)"]),
            "PUT /v1/sites/\(big)/load HTTP/1.1\r\n\r\n",
        ]
        for request in cases {
            #expect(Self.parse(request) == .other, "\(request.prefix(120))")
        }
    }

    @Test func theDateFieldIsAnIMFFixdate() {
        #expect(HTTPDate.format(784_111_777) == "Sun, 06 Nov 1994 08:49:37 GMT")   // RFC 9110 §5.6.7's example
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        var date = HTTPDate()
        #expect(String(decoding: date.line(at: 784_111_777), as: UTF8.self) == "date: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
    }
}

import ArgumentParser
import Dispatch
import Foundation
import Simulation

/// `resolverd simulate`: runs scenarios through the steering engine and writes a markdown
/// table per scenario and SVG plots into a folder.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare resolverd's steering with baseline policies in simulated scenarios.")

    @Argument(help: "Scenario files (YAML), e.g. scenarios/*.yaml.")
    var scenarios: [String]

    @Option(name: .long, help: "Folder for the tables and plots.")
    var out: String = "simulation"

    @Option(name: .long, parsing: .upToNextOption, help: "Policies to run (default: all).")
    var policies: [String] = []

    func run() throws {
        let kinds = try policies.isEmpty ? PolicyKind.allCases : policies.map { name in
            guard let kind = PolicyKind(rawValue: name) else {
                let choices = PolicyKind.allCases.map(\.rawValue).joined(separator: ", ")
                throw ValidationError("unknown policy \"\(name)\" (expected: \(choices))")
            }
            return kind
        }
        var loaded: [Scenario] = []
        var failed = false
        for path in scenarios {
            switch ScenarioReader.load(path: path) {
            case .success(let scenario): loaded.append(scenario)
            case .failure(let error):
                for item in error.errors { FileHandle.standardError.write(Data((item.description + "\n").utf8)) }
                failed = true
            }
        }
        if failed { throw ExitCode(1) }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)

        var index = "# Simulation results\n\nRegenerate with `make simulate`.\n"
        for scenario in loaded {
            let started = Date()
            let text = simulate(scenario, kinds: kinds)
            try text.write(toFile: "\(out)/\(scenario.name).md", atomically: true, encoding: .utf8)
            index += "\n" + text
            print(text)
            print(String(format: "(%@: %.1f s)\n", scenario.name, Date().timeIntervalSince(started)))
        }
        try index.write(toFile: "\(out)/README.md", atomically: true, encoding: .utf8)
    }

    /// Runs every variant of a scenario; returns its markdown and writes its plots.
    func simulate(_ scenario: Scenario, kinds: [PolicyKind]) -> String {
        var text = "## \(scenario.name)\n\n" + (scenario.summary.isEmpty ? "" : scenario.summary + "\n\n")
        let variants = scenario.sweep.isEmpty ? [nil] : scenario.sweep.map { Optional($0) }
        var rows: [(Variant, [RunResult])] = []
        for variant in variants {
            let current = variant.map(scenario.applying) ?? scenario
            let results = Simulator.runAll(current, policies: kinds) { count, body in
                DispatchQueue.concurrentPerform(iterations: count, execute: body)
            }
            if let variant {
                rows.append((variant, results))
                text += "### \(variant.label)\n\n"
            }
            text += Report.table(results, scenario: current) + "\n"
            text += Report.targets(results).map { "- \($0)\n" }.joined() + "\n"
            guard variant == nil else { continue }
            try? Report.seriesCSV(results, scenario: current)
                .write(toFile: "\(out)/\(scenario.name)-series.csv", atomically: true, encoding: .utf8)
            let title = "\(scenario.name): p95 response time per \(Int(scenario.window)) s"
            var files = [("response", Report.responsePlot(results, title: title, p95: true))]
            for result in results where result.policy == .resolverd || result.policy == .nearest {
                let plotTitle = "\(scenario.name): site utilisation, \(result.policy.title)"
                files.append(("utilisation-\(result.policy.rawValue)",
                              Report.utilizationPlot(result, scenario: current, title: plotTitle)))
            }
            for (suffix, svg) in files {
                let name = "\(scenario.name)-\(suffix).svg"
                try? svg.write(toFile: "\(out)/\(name)", atomically: true, encoding: .utf8)
                text += "![\(scenario.name) \(suffix)](\(name))\n"
            }
            text += "\n"
        }
        if !rows.isEmpty { text += "### Summary\n\n" + Report.sweepTable(rows) + "\n" }
        return text
    }
}

import ArgumentParser
import Foundation

/// `resolverd check`: validates the configuration and every zone exactly as `serve` would
/// load them, printing each error as `FILE:LINE: message`.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate configuration and zones; exit 1 on any error.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        switch StateLoader.load(configPath: options.config) {
        case .success(let loaded):
            let catalog = loaded.state.catalog
            let zones = catalog.zones.values.map(\.origin.text).sorted().joined(separator: ", ")
            print("ok: \(catalog.zones.count) zone(s) (\(zones)), \(catalog.recordCount) records")
        case .failure(let error):
            for item in error.errors {
                FileHandle.standardError.write(Data((item.description + "\n").utf8))
            }
            throw ExitCode(1)
        }
    }
}

import Resolver

/// Builds a complete `ServingState` from a configuration file: the single path by which
/// `serve`, SIGHUP and `check` read their inputs, so that what `check` accepts is exactly
/// what `serve` will load.
struct LoadedState: Sendable {
    var configuration: Configuration
    var state: ServingState
}

enum StateLoader {
    static func load(configPath: String) -> Result<LoadedState, ZoneLoadError> {
        let configuration: Configuration
        switch Configuration.load(path: configPath) {
        case .success(let loaded): configuration = loaded
        case .failure(let error): return .failure(error)
        }
        switch ZoneFileLoader.loadDirectory(configuration.zonesDirectory) {
        case .success(let zones):
            guard !zones.isEmpty else {
                return .failure(ZoneLoadError(errors: [SourceError(file: configuration.zonesDirectory, line: 0,
                                                                   message: "no *.zone files")]))
            }
            let state = ServingState(catalog: Catalog(zones: zones), nsid: configuration.nsid.map { Array($0.utf8) })
            return .success(LoadedState(configuration: configuration, state: state))
        case .failure(let error):
            return .failure(error)
        }
    }
}

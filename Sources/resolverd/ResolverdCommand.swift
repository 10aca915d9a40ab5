import ArgumentParser

/// `resolverd`: an authoritative DNS server that steers clients to the best edge site.
@main
struct ResolverdCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolverd",
        abstract: "Authoritative DNS server that answers service names with the best edge site per client.",
        subcommands: [Serve.self, Check.self, Explain.self, ReportCommand.self, Simulate.self],
        defaultSubcommand: Serve.self
    )
}

/// Options every subcommand that reads the configuration shares.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (YAML).")
    var config: String = "resolverd.yaml"
}

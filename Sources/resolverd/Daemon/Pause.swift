import ServiceLifecycle

/// Sleeps for `duration`, or less when graceful shutdown begins, so that periodic services
/// stop at once on SIGTERM instead of finishing their sleep.
func pause(_ duration: Duration) async {
    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: duration) }
}

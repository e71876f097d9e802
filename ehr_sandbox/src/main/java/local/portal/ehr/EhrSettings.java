package local.portal.ehr;

import java.nio.file.Path;
import java.nio.file.Paths;

/**
 * Runtime settings, read from environment variables (with system-property fallbacks
 * of the same name in lower case with dots, e.g. -Dehr.port=9090).
 *
 * <ul>
 *   <li>{@code EHR_PORT} – HTTP port (default 8080)</li>
 *   <li>{@code EHR_BIND} – bind address (default 127.0.0.1)</li>
 *   <li>{@code EHR_STATE_DIR} – state directory (default ./.state/ehr); the H2 database lives in
 *       {@code <state>/h2/hapi.mv.db}</li>
 * </ul>
 */
public final class EhrSettings {

	private final int port;
	private final String bind;
	private final Path stateDir;

	private EhrSettings(int port, String bind, Path stateDir) {
		this.port = port;
		this.bind = bind;
		this.stateDir = stateDir;
	}

	public static EhrSettings fromEnvironment() {
		String portText = value("EHR_PORT", "8080");
		int port;
		try {
			port = Integer.parseInt(portText.trim());
		} catch (NumberFormatException e) {
			throw new IllegalArgumentException("EHR_PORT must be an integer, got: " + portText, e);
		}
		if (port < 0 || port > 65535) {
			throw new IllegalArgumentException("EHR_PORT out of range: " + port);
		}
		String bind = value("EHR_BIND", "127.0.0.1").trim();
		Path stateDir = Paths.get(value("EHR_STATE_DIR", "./.state/ehr").trim()).toAbsolutePath().normalize();
		return new EhrSettings(port, bind, stateDir);
	}

	private static String value(String envName, String defaultValue) {
		String v = System.getenv(envName);
		if (v == null || v.isBlank()) {
			v = System.getProperty(envName.toLowerCase().replace('_', '.'));
		}
		return (v == null || v.isBlank()) ? defaultValue : v;
	}

	public int port() {
		return port;
	}

	public String bind() {
		return bind;
	}

	public Path stateDir() {
		return stateDir;
	}

	public Path h2Dir() {
		return stateDir.resolve("h2");
	}

	public String jdbcUrl() {
		// Forward slashes work on every OS for H2 file URLs.
		String base = h2Dir().resolve("hapi").toString().replace('\\', '/');
		return "jdbc:h2:file:" + base + ";DB_CLOSE_ON_EXIT=FALSE";
	}

	/** Host name used in the advertised base URL (links in bundles use the request's Host header anyway). */
	public String advertisedHost() {
		return ("0.0.0.0".equals(bind) || "::".equals(bind)) ? "127.0.0.1" : bind;
	}
}

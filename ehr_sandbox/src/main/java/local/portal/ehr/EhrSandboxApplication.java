package local.portal.ehr;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.SpringBootConfiguration;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.autoconfigure.context.PropertyPlaceholderAutoConfiguration;
import org.springframework.boot.autoconfigure.web.embedded.EmbeddedWebServerFactoryCustomizerAutoConfiguration;
import org.springframework.boot.autoconfigure.web.servlet.ServletWebServerFactoryAutoConfiguration;
import org.springframework.boot.context.event.ApplicationReadyEvent;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ApplicationListener;
import org.springframework.context.annotation.Import;

import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;

/**
 * Entry point of the EHR sandbox: a HAPI FHIR JPA R4 server on an H2 file database.
 *
 * <p>Only the handful of Spring Boot auto-configurations that are really needed (the embedded
 * Tomcat) are imported; everything HAPI needs is wired explicitly in {@link FhirServerConfig}.
 */
@SpringBootConfiguration
@ImportAutoConfiguration({
	PropertyPlaceholderAutoConfiguration.class,
	ServletWebServerFactoryAutoConfiguration.class,
	EmbeddedWebServerFactoryCustomizerAutoConfiguration.class
})
@Import(FhirServerConfig.class)
public class EhrSandboxApplication {

	private static final Logger ourLog = LoggerFactory.getLogger(EhrSandboxApplication.class);

	public static void main(String[] args) throws Exception {
		EhrSettings settings = EhrSettings.fromEnvironment();
		Files.createDirectories(settings.h2Dir());

		Map<String, Object> props = new HashMap<>();
		props.put("server.port", settings.port());
		props.put("server.address", settings.bind());
		props.put("server.servlet.context-path", "");
		props.put("server.tomcat.threads.max", 40);
		props.put("server.tomcat.threads.min-spare", 4);
		props.put("server.tomcat.max-swallow-size", "-1");
		props.put("server.max-http-request-header-size", "64KB");
		// FHIR clients commonly send '|' (token system|code) and other reserved characters unencoded.
		props.put("server.tomcat.relaxed-query-chars", "|,{,},[,],^,`,\\,<,>,\"");
		props.put("server.tomcat.relaxed-path-chars", "|,{,},[,],^,`,\\,<,>,\"");
		props.put("spring.main.banner-mode", "off");
		props.put("spring.jmx.enabled", "false");
		props.put("spring.main.log-startup-info", "false");
		// HAPI's JPA configuration contains bean cycles (like the official starter, which sets the same).
		props.put("spring.main.allow-circular-references", "true");

		SpringApplication app = new SpringApplication(EhrSandboxApplication.class);
		app.setWebApplicationType(WebApplicationType.SERVLET);
		app.setDefaultProperties(props);
		app.setRegisterShutdownHook(true);

		app.addListeners((ApplicationListener<ApplicationReadyEvent>) event -> {
			int port = settings.port();
			if (event.getApplicationContext() instanceof WebServerApplicationContext wsac) {
				port = wsac.getWebServer().getPort();
			}
			warmUp(settings, port);
			SchemaMarker.markCurrent(settings);
			long uptime = ManagementFactory.getRuntimeMXBean().getUptime();
			ourLog.info(
					"EHR sandbox ready: http://{}:{}/fhir (FHIR R4, state dir {}, started in {} ms)",
					settings.advertisedHost(),
					port,
					settings.stateDir(),
					uptime);
		});
		app.run(args);
	}

	/**
	 * Builds (and caches) the CapabilityStatement before announcing readiness, so that the
	 * "ready" log line really means /fhir/metadata answers quickly.
	 */
	private static void warmUp(EhrSettings settings, int port) {
		String host = settings.advertisedHost();
		if (host.contains(":") && !host.startsWith("[")) {
			host = "[" + host + "]";
		}
		URI uri = URI.create("http://" + host + ":" + port + "/fhir/metadata");
		try {
			HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
			HttpResponse<Void> response = client.send(
					HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(120)).GET().build(),
					HttpResponse.BodyHandlers.discarding());
			if (response.statusCode() != 200) {
				ourLog.warn("Warm-up request {} answered HTTP {}", uri, response.statusCode());
			}
		} catch (Exception e) {
			ourLog.warn("Warm-up request {} failed: {}", uri, e.toString());
		}
	}
}

package local.bench.peer;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.web.servlet.ServletComponentScan;

/**
 * Launcher for the benchmark peer of {@code ./stack bench peer}: Google's FHIR Information Gateway
 * (Maven Central artifacts com.google.fhir.gateway:server and :plugins, 0.4.0) on embedded Tomcat.
 *
 * <p>Two scans are all the gateway needs from us: a component scan of its plugin package, so that
 * the access-checker factories (e.g. "patient") get registered as beans, and a servlet scan of its
 * root package, so that its {@code @WebServlet} proxy is mounted (at {@code /fhir/*}). Everything
 * else is configured by the gateway itself from environment variables (PROXY_TO, TOKEN_ISSUER,
 * ACCESS_CHECKER, BACKEND_TYPE, RUN_MODE, ...).
 */
@SpringBootApplication(scanBasePackages = "com.google.fhir.gateway.plugin")
@ServletComponentScan(basePackages = "com.google.fhir.gateway")
public class PeerMain {

  public static void main(String[] args) {
    SpringApplication.run(PeerMain.class, args);
  }
}

package kaon.runtime.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/**
 * {@code kaon --version}: the version and the git commit this build was made from, so that an
 * operator can tell which build each VM runs. Both come from a resource written at build time;
 * the commit is "unknown" when the build had no git (e.g. from a source archive).
 */
final class BuildVersion implements IVersionProvider {

  private static final String RESOURCE = "build.properties";

  @Override
  public String[] getVersion() {
    Properties build = new Properties();
    try (InputStream in = BuildVersion.class.getResourceAsStream(RESOURCE)) {
      if (in != null) {
        build.load(in);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + RESOURCE + " from the kaon jar", e);
    }
    return new String[] {
        "kaon " + build.getProperty("version", "unknown") + " (commit " + build.getProperty("commit", "unknown") + ")"};
  }
}

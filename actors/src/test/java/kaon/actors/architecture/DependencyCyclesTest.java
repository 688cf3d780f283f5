package kaon.actors.architecture;

import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.library.dependencies.SliceAssignment;
import com.tngtech.archunit.library.dependencies.SliceIdentifier;
import org.junit.jupiter.api.Test;

/**
 * Dependencies inside kaon-actors run one way: between packages (job, then worker, then training,
 * all-reduce and checkpoints) and between the classes of a package (an actor's children and
 * helpers never know the actor). A class and the classes nested in it count as one. Run alone
 * with {@code mvn -pl actors test -Dtest=DependencyCyclesTest}; a failure lists each cycle.
 */
class DependencyCyclesTest {

  private static final JavaClasses ACTORS = new ClassFileImporter()
      .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
      .importPackages("kaon.actors");

  @Test
  void packagesDoNotDependOnEachOtherInACycle() {
    slices().matching("kaon.actors.(*)..").should().beFreeOfCycles().check(ACTORS);
  }

  @Test
  void classesDoNotDependOnEachOtherInACycle() {
    slices().assignedFrom(new TopLevelClasses()).should().beFreeOfCycles().check(ACTORS);
  }

  /** Each top-level class of kaon-actors with the classes nested in it. */
  private static final class TopLevelClasses implements SliceAssignment {
    @Override
    public SliceIdentifier getIdentifierOf(JavaClass javaClass) {
      String name = javaClass.getName();
      if (!name.startsWith("kaon.actors.")) {
        return SliceIdentifier.ignore();
      }
      int nested = name.indexOf('$');
      return SliceIdentifier.of(nested < 0 ? name : name.substring(0, nested));
    }

    @Override
    public String getDescription() {
      return "top-level classes of kaon.actors";
    }
  }
}
